"""Fixtures for the pipeline tests: a client on the session's embedded server, and a
fresh parent job split from a plan."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from splitkit import Client, plan_parts, split_parent, start_parent_job
from splitkit.api import Event


@pytest.fixture
def client(server) -> Iterator[Client]:
    with Client(server.url, server.token, environment_id=server.environment_id) as c:
        yield c


@pytest.fixture
def split_job(server, client: Client) -> Callable[..., tuple[str, pd.DataFrame]]:
    """Make a parent job on the session's sheet and split it: returns (parent id, parts)."""

    def make(batch_size: int = 100, total: int | None = None) -> tuple[str, pd.DataFrame]:
        counts = client.get_counts(server.sheet_id)
        plan = plan_parts(total if total is not None else counts.total, batch_size=batch_size)
        parent = start_parent_job(client, server.sheet_id)
        # total=N plans part of the sheet on purpose
        return parent.id, split_parent(client, parent.id, plan, check_counts=total is None)

    return make


@pytest.fixture
def job_events(client: Client) -> Callable[..., list[Event]]:
    """Every job event of the server (all pages), optionally of one topic."""

    def collect(topic: str | None = None) -> list[Event]:
        events: list[Event] = []
        page = 1
        while True:
            batch = client.list_events(
                domain="job",
                topic=topic,
                include_acknowledged=True,
                page_size=1000,
                page_number=page,
            )
            events.extend(batch)
            if len(batch) < 1000:
                return events
            page += 1

    return collect
