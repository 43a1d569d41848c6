"""Delivery: queues, workers, retry policy, batching, health and rate limits."""
