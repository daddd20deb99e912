"""Bundled data of ioc.core (the default agency registry)."""
