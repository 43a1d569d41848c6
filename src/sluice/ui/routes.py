"""Every page router of the interface, in the order they are mounted."""

from __future__ import annotations

from fastapi import APIRouter

from sluice.ui import (
    pages_actions,
    pages_audiences,
    pages_auth,
    pages_catalog,
    pages_connectors,
    pages_profile,
    pages_reports,
    pages_tools,
    pages_versions,
)

ROUTERS: tuple[APIRouter, ...] = (
    pages_auth.router,
    pages_catalog.router,
    pages_connectors.router,
    pages_actions.router,
    pages_versions.router,
    pages_reports.router,
    pages_profile.router,
    pages_tools.router,
    pages_audiences.router,
)
