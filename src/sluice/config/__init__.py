"""The configuration model (SPEC §1): profiles, data sources, feeds, connectors, versions."""
