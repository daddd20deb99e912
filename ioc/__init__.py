"""ioc: event-processing backend for a provincial Intelligent Operations Center."""

__version__ = "0.1.0"
