"""Example Echo: a third-party connector type for Sluice, shipped as its own package."""
