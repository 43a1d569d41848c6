"""The event-processing engine: pure functions the hot path runs for every event.

Routing (feed conditions, consent) and mapping (paths, transforms, Liquid templates)
are compiled once per published configuration and evaluated per event without I/O.
Nothing is imported here so that using one module does not load the others (Liquid).
"""
