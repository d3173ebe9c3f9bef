"""What runs on a Dask worker: the part's page fetched there, the handler, the place it ran.

The coordinator (the process that called `dispatch()`) acks a part and sends the worker a
`Part` whose records are a `RemotePage`: the sheet, page number and size, and the name of
the worker plugin that holds the API access, never the token. The worker reads the page
from the API itself (`run_parts_on_worker`), so the sheet's records never pass through the
coordinator, and returns the handler's result with the worker's address.

The access reaches the worker in a `WorkerAccess` plugin (`distributed` keeps it on the
scheduler and sets it up on every worker, also on workers that join later): it carries
the coordinator's `ClientConfig`, or nothing, and then each worker reads its own
`FLATFILE_API_KEY` / `FLATFILE_API_URL` / `FLATFILE_ENVIRONMENT_ID` (`ClientConfig.from_env`).
Task keys and arguments carry only the plugin's name; `ClientConfig` keeps the token out
of every repr, and so does this plugin.

A page that cannot be read (after the client's own retries) raises `PartLeftOpenError`:
the handler did not run, so the coordinator leaves the part open rather than failing it.
"""

from __future__ import annotations

import pickle
import time
import traceback
from dataclasses import dataclass
from typing import Any

import cloudpickle
import tblib.pickling_support
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from splitkit.api import Client, ClientConfig
from splitkit.engine.executors import Handler, _call_in_worker
from splitkit.engine.part import Part
from splitkit.engine.tracebacks import keep_handler_frames
from splitkit.errors import PartLeftOpenError

#: A part's end on the worker: (True, the handler's result, seconds in the handler) or
#: (False, its error, seconds in the handler or None when it did not run).
Outcome = tuple[bool, Any, float | None]


class WorkerAccess(WorkerPlugin):
    """The API access of a worker: a `Client` made once per worker process.

    `config=None`: the worker's own environment (`FLATFILE_API_KEY`, ...), so no secret
    leaves the coordinator. The token is in no repr (ClientConfig hides it too)."""

    idempotent = False

    def __init__(self, name: str, config: ClientConfig | None) -> None:
        self.name = name
        self._config = config
        self._client: Client | None = None

    def setup(self, worker: Any) -> None:
        config = self._config if self._config is not None else ClientConfig.from_env()
        self._client = Client.from_config(config)

    def teardown(self, worker: Any) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise PartLeftOpenError(f"the worker plugin {self.name} was not set up")
        return self._client

    def __repr__(self) -> str:
        where = "the coordinator's config" if self._config is not None else "the environment"
        return f"WorkerAccess(name={self.name!r}, from {where})"


@dataclass(frozen=True)
class RemotePage:
    """A part's page, read on the worker through the plugin named `access`."""

    sheet_id: str
    page_number: int
    page_size: int
    access: str

    def read(self) -> bytes:
        """The page's response body, read with the worker's client (its retries included)."""
        worker = get_worker()
        plugin = worker.plugins.get(self.access)
        if not isinstance(plugin, WorkerAccess):
            raise PartLeftOpenError(
                f"worker {worker.address} has no splitkit access plugin {self.access!r} "
                "(it joined a cluster whose coordinator has closed its DaskExecutor?)"
            )
        try:
            return plugin.client.get_records_raw(
                self.sheet_id, page_number=self.page_number, page_size=self.page_size
            )
        except Exception as exc:  # the client resent what it safely could; not the handler's
            raise PartLeftOpenError(
                f"worker {worker.address} could not read the part's records "
                f"(page {self.page_number} of {self.sheet_id}): {type(exc).__name__}: {exc}"
            ) from None


def run_parts_on_worker(handler: Handler, parts: list[Part]) -> tuple[list[Outcome], str]:
    """The Dask task of one part, or of a group (`DaskExecutor(parts_per_task=n)`): for
    each part in turn, read its page, then run the handler (a page that cannot be read is
    no handler failure: `PartLeftOpenError`). (an `Outcome` per part, this worker's
    address). A part's error is its own: the next part still runs."""
    outcomes: list[Outcome] = []
    for part in parts:
        began: float | None = None
        outcome: Outcome
        try:
            part.load()
            began = time.perf_counter()  # the handler's own time, not the page's read
            result = _call_in_worker(handler, part)
            outcome = (True, result, time.perf_counter() - began)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit, an async handler's CancelledError too
            took = None if began is None else time.perf_counter() - began
            outcome = (False, portable(exc), took)
        outcomes.append(travelling(outcome))
    return outcomes, str(get_worker().address)


def portable(exc: BaseException) -> BaseException:
    """`exc` as it can travel back to the coordinator: the user's frames written on it
    (filtered here, against this worker's own paths) and its traceback (tblib pickles it,
    as Dask does for a task's error)."""
    keep_handler_frames(exc)
    tblib.pickling_support.install(exc)
    return exc


def travelling(outcome: Outcome) -> Outcome:
    """`outcome` if it survives the trip back (pickled and read again), else its part's
    failure saying why: a result or error that cannot travel fails its own part, not the
    whole task's group."""
    try:
        pickle.loads(cloudpickle.dumps(outcome))
    except Exception as exc:
        ok, value, took = outcome
        what = "result" if ok else f"error ({type(value).__name__}: {value})"
        text = "" if ok else "\n" + "".join(traceback.format_exception(value))
        failure = RuntimeError(
            f"the handler's {what} could not be sent back from the Dask worker "
            f"({type(exc).__name__}: {exc}){text}"
        )
        return (False, failure, took)
    return outcome
