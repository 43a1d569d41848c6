"""Sluice: a self-hosted server-side connector hub for customer event data."""

__version__ = "0.1.0"
