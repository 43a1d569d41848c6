"""Reporting: counters, the error log, CSV exports and the live stream."""
