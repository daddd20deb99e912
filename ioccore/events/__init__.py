"""Event contracts: envelope models, validation, units, the inter-stage record."""
