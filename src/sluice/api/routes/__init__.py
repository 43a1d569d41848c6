"""One module per collection of the management API, all mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from sluice.api.routes import (
    action_test,
    actions,
    attributes,
    audiences,
    audit,
    catalog,
    connectors,
    data_sources,
    errors_log,
    event_feeds,
    profiles,
    reports,
    search,
    tokens,
    traces,
    users,
    versions,
    visitor_attributes,
    visitors,
)

ROUTERS: tuple[APIRouter, ...] = (
    profiles.router,
    data_sources.router,
    attributes.router,
    event_feeds.router,
    visitor_attributes.router,
    audiences.router,
    visitors.router,
    connectors.router,
    actions.router,
    action_test.router,
    versions.router,
    catalog.router,
    search.router,
    reports.router,
    errors_log.router,
    traces.router,
    audit.router,
    tokens.router,
    users.router,
)
