"""Bundled reference data (see README.md); a package so wheels include it."""
