"""One router per resource, all mounted under ``/v1`` by ``create_app``."""

from __future__ import annotations

from fastapi import APIRouter

from . import environments, events, jobs, records, sheets, spaces, workbooks

ROUTERS: tuple[APIRouter, ...] = (
    environments.router,
    spaces.router,
    workbooks.router,
    sheets.router,
    records.router,
    jobs.router,
    events.router,
)
