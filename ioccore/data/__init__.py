"""Bundled data of ioccore (the default agency registry)."""
