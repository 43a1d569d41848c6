"""Prometheus metrics of this process."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "sluice_events_accepted", "Events accepted by the collect API", registry=REGISTRY
)
EVENTS_REFUSED = Counter(
    "sluice_events_refused",
    "Collect requests refused, by reason",
    ["reason"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "sluice_deliveries",
    "Delivery outcomes per event, by connector type and outcome",
    ["connector_type", "outcome"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "sluice_queue_depth", "Events and deliveries not yet final", ["queue"], registry=REGISTRY
)
DELIVERY_LATENCY = Histogram(
    "sluice_delivery_latency_seconds",
    "Time of one HTTP request to a vendor, per connector",
    ["connector_id"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
LEASES_LOST = Counter(
    "sluice_delivery_leases_lost",
    "Deliveries whose lease another process took over before this one recorded them",
    registry=REGISTRY,
)
PROFILE_OVER_SIZE = Counter(
    "sluice_visitor_profile_over_size",
    "Events whose visitor profile update was refused for passing the size cap",
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
