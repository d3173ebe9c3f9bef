"""`multipart_listener()`: the seed's flow as one listener. The parent's `job:ready`
splits it from a plan, each part's `job:ready` runs the handler on its records (the same
core as `dispatch()`: `run_part`), and the parent's `job:parts-completed` settles it from
the summary counts."""

from __future__ import annotations

from typing import Any

from splitkit._checks import callable_handler, non_empty_str, positive_int, positive_number
from splitkit.api import AsyncClient, Client, ClientConfig, Event
from splitkit.engine.executors import Executor, Handler, LoopExecutor
from splitkit.engine.part_options import PartOptions
from splitkit.engine.steps import PartSpec, part_index, run_part
from splitkit.errors import PartLeftOpenError
from splitkit.listener.polling import Listener
from splitkit.pipeline import part_data_for
from splitkit.plan import MAX_PAGE_SIZE, plan_parts
from splitkit.settlement import asettle
from splitkit.summary import summarize

__all__ = ["multipart_listener"]


def multipart_listener(
    client: Client | AsyncClient | ClientConfig,
    handler: Handler,
    *,
    batch_size: int = 1000,
    job: str = "sheet:submitLargeSheet",
    timeout: float | None = None,
    executor: Executor | None = None,
    **listener_options: Any,
) -> Listener:
    """The seed's flow as one listener: split parents, process parts, settle parents.

    `batch_size` (at most `MAX_PAGE_SIZE`, one records page) sizes the parts; `job` is the
    parent job's `<type>:<operation>`; `timeout` bounds each handler call; the other
    keyword arguments go to `Listener`.

    A part that cannot be run to its end here (its ack or page cannot get through, or its
    end cannot be delivered within the delivery window) is left open on the server and its
    event raises `PartLeftOpenError`: the event stays unacknowledged, so the next listener
    to start runs the part from its backlog. A part fails only because the handler did.
    """
    batch_size = positive_int("batch_size", batch_size)
    if batch_size > MAX_PAGE_SIZE:
        raise ValueError(
            f"batch_size must be at most {MAX_PAGE_SIZE:,} (the records page limit), "
            f"got {batch_size!r}"
        )
    callable_handler(handler)
    non_empty_str("job", job, what="a job name like 'sheet:submitLargeSheet'")
    if timeout is not None:
        positive_number("timeout", timeout)
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be an Executor (run/close), got {executor!r}")
    listener = Listener(client, **listener_options)
    run_on = executor or LoopExecutor()
    part_options = PartOptions(timeout_s=timeout)

    @listener.on("job:ready", job=job, is_part=False)
    async def split_parent_job(event: Event, api: AsyncClient) -> None:
        parent_id = str(event.context["jobId"])
        sheet_id = str(event.context.get("sheetId") or (await api.get_job(parent_id)).source)
        counts = await api.get_counts(sheet_id)
        await api.ack_job(parent_id, info="Splitting job", progress=10)
        plan = plan_parts(counts.total, batch_size=batch_size)
        if len(plan) == 0:
            await api.complete_job(parent_id, message="The sheet has no records: nothing to do")
            return
        await api.split_job(parent_id, part_data_for(plan))
        await api.ack_job(parent_id, info=f"Job split into {len(plan)} parts", progress=20)

    @listener.on("job:ready", job=job, is_part=True)
    async def process_part(event: Event, api: AsyncClient) -> None:
        part_job = await api.get_job(str(event.context["jobId"]))
        spec = PartSpec(
            job_id=part_job.id,
            parent_id=str(part_job.parent_id),
            index=part_index(part_job),
            total=int((part_job.part_data or {}).get("total", 0)),
        )
        # The same core as dispatch(): retries, timeout, and the outcome on the server.
        result = await run_part(api, spec, handler, run_on, part_options)
        if result.status == "pending":
            # Not started or its end not delivered: raising keeps the event unacknowledged,
            # so the part is run by the next listener's backlog instead of being forgotten.
            raise PartLeftOpenError(f"part {part_job.id} left open: {result.error}")

    @listener.on("job:parts-completed", job=job, is_part=False)
    async def settle_parent(event: Event, api: AsyncClient) -> None:
        parent_id = str(event.context["jobId"])
        summary = summarize(parts_completed=event.payload, parent_id=parent_id)
        await asettle(api, parent_id, summary)

    return listener
