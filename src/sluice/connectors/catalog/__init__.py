"""Built-in connector types, one module per vendor; each exposes ``CONNECTOR``.

Nothing is imported here: :mod:`sluice.connectors.registry` lists the modules and loads them
when the registry is built.
"""
