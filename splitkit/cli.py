"""The ``splitkit`` command: a thin layer over the library (one function per command).

A user's mistake (a port in use, an unknown sample, a batch size above the page limit, no
API key, a bad option) is answered with one line on stderr naming the problem and the way
out, and exit status 2; ``splitkit --debug ...`` adds the traceback. Anything else is a bug
and shows its traceback as usual.
"""

from __future__ import annotations

import errno
import importlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from typer.core import TyperGroup

from splitkit.errors import SplitkitError
from splitkit.plan import MAX_PAGE_SIZE
from splitkit.simprofile import PROFILES

HOW_TO_CONNECT = (
    "set FLATFILE_API_KEY to your Flatfile secret key, or run `splitkit serve` and set "
    "FLATFILE_API_URL and FLATFILE_API_KEY to the URL and token it prints"
)

# Click's exception classes as typer raises them (its own copy of click in recent typer,
# click itself in older ones): found from typer's public BadParameter, so either works.
_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


class UserError(SplitkitError):
    """A mistake the user can fix: one line, exit status 2 (the traceback with --debug)."""

    exit_code = 2


@dataclass
class _Invocation:
    """What the root callback learnt: --debug, and the command's name for messages."""

    debug: bool = False
    command: str = "splitkit"


_INVOCATION: ContextVar[_Invocation] = ContextVar("splitkit_cli_invocation")


class _OneLineErrors(TyperGroup):
    """Click's and splitkit's refusals as one line on stderr instead of a box or a trace."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        invocation = _Invocation(command=prog_name or "splitkit")
        token = _INVOCATION.set(invocation)
        try:
            # Not standalone: click hands its errors (and an Exit's code) back to us
            # instead of printing them its own way.
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (UserError, _CLICK_ERROR) as exc:
            if not standalone_mode:
                raise
            _show(exc, invocation)
            sys.exit(getattr(exc, "exit_code", 2))
        finally:
            _INVOCATION.reset(token)
        if standalone_mode:
            sys.exit(code if isinstance(code, int) else 0)
        return code


def _show(exc: Exception, invocation: _Invocation) -> None:
    """One line on stderr: the command, the problem and the way out."""
    if invocation.debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, _USAGE_ERROR):
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else invocation.command
        problem = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
        line = f"{problem}{' ' if problem.endswith('?') else '; '}see '{where} --help'"
    elif isinstance(exc, _CLICK_ERROR):
        where, line = invocation.command, exc.format_message()  # type: ignore[attr-defined]
    else:
        where, line = invocation.command, str(exc)
    print(f"{where}: {' '.join(line.split())}", file=sys.stderr, flush=True)


app = typer.Typer(
    cls=_OneLineErrors,
    help="Flatfile multi-part jobs: the embedded server and the tools around it.",
    pretty_exceptions_show_locals=False,  # locals can hold the token
)


@app.callback(no_args_is_help=True)
def _root(
    context: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show its full traceback too.")
    ] = False,
) -> None:
    """Flatfile multi-part jobs: the embedded server and the tools around it."""
    invocation = _INVOCATION.get(None)
    if invocation is not None:
        invocation.debug = debug
        invocation.command = f"{context.command_path} {context.invoked_subcommand or ''}".strip()


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file to keep data in (default: temporary).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Bearer token clients must send (default: generated).")
    ] = None,
    sample: Annotated[
        str | None,
        typer.Option(help="Load a packaged sample into a sheet (contacts: 3,000 contacts)."),
    ] = None,
    records: Annotated[
        int | None, typer.Option(min=0, help="Generate N synthetic records into a sheet.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated records.")] = 0,
    max_body_mb: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Largest request body in MiB, larger ones get 413 (default: 32)."
        ),
    ] = None,
    simulate: Annotated[
        str | None,
        typer.Option(
            help=f"Simulate a platform: a profile name ({', '.join(PROFILES)}) or a "
            "profile JSON file (see docs/simulator.md). Default: off."
        ),
    ] = None,
    latency_ms: Annotated[
        float | None, typer.Option(min=0, help="Simulated latency per request (ms).")
    ] = None,
    jitter_ms: Annotated[
        float | None, typer.Option(min=0, help="Simulated extra latency, uniform 0..N ms.")
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(min=0.001, help="Simulated rate limit: requests/s per token (then 429)."),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(min=1, help="Requests a token may send at once (bucket).")
    ] = None,
    fail: Annotated[
        list[str] | None,
        typer.Option(
            help="Simulated failures, STATUS:RATE[:METHOD /path], e.g. 503:0.01 or "
            "'500:0.05:POST /jobs/*/complete' (repeatable)."
        ),
    ] = None,
    page_ms_per_record: Annotated[
        float | None, typer.Option(min=0, help="Simulated records-page cost, ms per record.")
    ] = None,
    sim_seed: Annotated[
        int | None, typer.Option(help="Seed of the simulator's random draws.")
    ] = None,
) -> None:
    """Run the embedded Flatfile-compatible server until Ctrl-C."""
    from splitkit.server import EmbeddedServer
    from splitkit.server.config import DEFAULT_MAX_BODY_MB
    from splitkit.server.samples import available_samples

    if sample is not None and records is not None:
        raise typer.BadParameter("pass --sample or --records, not both")
    if sample is not None and sample not in available_samples():
        there = ", ".join(repr(name) for name in available_samples()) or "none"
        raise UserError(
            f"there is no sample {sample!r}: the samples are {there}; pass one of them to "
            "--sample, or --records N for N generated records"
        )
    profile = _simulated(
        simulate,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        rate_per_s=rate_limit,
        burst=burst,
        failures=fail,
        page_ms_per_record=page_ms_per_record,
        seed=sim_seed,
    )
    server = EmbeddedServer(
        simulate=profile,
        db_path=db,
        token=token,
        host=host,
        port=port,
        sample=sample,
        records=records,
        seed=seed,
        max_body_mb=DEFAULT_MAX_BODY_MB if max_body_mb is None else max_body_mb,
    )
    try:
        server.start()
    except OSError as exc:
        raise _cannot_listen(exc, host, port) from exc
    try:
        typer.echo(f"splitkit server at   {server.url}")
        typer.echo(f"token                {server.token}")
        typer.echo(f"environment id       {server.environment_id}")
        typer.echo(f"request body limit   {server.max_body_mb:g} MiB (--max-body-mb)")
        if profile is not None:
            typer.echo(f"simulating           {profile.describe()}")
        if server.sheet_id is not None:
            typer.echo(f"sheet id             {server.sheet_id}")
        typer.echo(
            f"database             {db if db is not None else 'temporary (removed on exit)'}"
        )
        path = f"sheets/{server.sheet_id}/counts" if server.sheet_id else "environments"
        typer.echo(f"\ntry:  curl -H 'Authorization: Bearer {server.token}' {server.url}/{path}")
        typer.echo("Ctrl-C stops the server.")
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            typer.echo("\nstopping...")
    finally:
        server.stop()


def _simulated(simulate: str | None, **flags: Any) -> Any:
    """The simulator's profile from ``--simulate`` and the flags given (None: off)."""
    from splitkit.simprofile import FailureRule, sim_profile

    given = {name: value for name, value in flags.items() if value is not None}
    if simulate is None and not given:
        return None
    try:
        if "failures" in given:
            given["failures"] = tuple(FailureRule.parse(text) for text in given["failures"])
        if simulate is None:
            given["name"] = "custom"
        return sim_profile(simulate or "local", **given)
    except ValueError as exc:
        raise UserError(f"{exc}; see docs/simulator.md") from exc


def _cannot_listen(exc: OSError, host: str, port: int) -> Exception:
    """What the user can do about a failed bind; the error itself when it is not theirs."""
    if exc.errno == errno.EADDRINUSE:
        return UserError(
            f"port {port} is in use: choose another with --port, or --port 0 for a free one"
        )
    if exc.errno == errno.EACCES:
        return UserError(
            f"port {port} needs privileges this user lacks (ports below 1024 do): choose "
            "another with --port, or --port 0 for a free one"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return UserError(
            f"cannot listen on host {host!r}: it is not an address of this machine; use "
            "--host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)"
        )
    return exc


_BATCH_HELP = f"Records per part (1 to {MAX_PAGE_SIZE:,}: a part is one page of records)."


@app.command()
def demo(
    records: Annotated[int, typer.Option(min=1, help="Generated records in the sheet.")] = 100_000,
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE, help=_BATCH_HELP)] = 1_000,
    concurrency: Annotated[int, typer.Option(min=1, help="Parts processed at once.")] = 8,
    retry: Annotated[
        bool, typer.Option("--retry", help="Retry the parts that fail on purpose, then settle.")
    ] = False,
) -> None:
    """The main job: the whole pipeline on the embedded server with sample data."""
    from splitkit.demo import run_demo

    run_demo(records=records, batch_size=batch_size, concurrency=concurrency, retry=retry)


@app.command()
def listen(
    handler: Annotated[
        str, typer.Argument(help="The part handler, as module:function (e.g. mypkg.jobs:handle).")
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE, help=_BATCH_HELP)] = 1_000,
    job: Annotated[str, typer.Option(help="The parent jobs to handle, as type:operation.")] = (
        "sheet:submitLargeSheet"
    ),
    concurrency: Annotated[
        int, typer.Option(min=1, help="Events (so parts) handled at once.")
    ] = 16,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds one handler call may take (default: no limit)."),
    ] = None,
) -> None:
    """Run the event-driven flow until Ctrl-C: split parents, process parts, settle parents.

    Connects with FLATFILE_API_KEY / FLATFILE_API_URL / FLATFILE_ENVIRONMENT_ID. Logs
    warnings and errors (a failed handler, an event left unacknowledged, a poll that
    failed) to stderr, one line each.
    """
    import logging

    from splitkit.api import AuthError, ClientConfig
    from splitkit.listener import multipart_listener

    function = _import_handler(handler)
    if not any(os.environ.get(name) for name in ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")):
        raise UserError(f"no API key to connect with: {HOW_TO_CONNECT}")
    try:
        config = ClientConfig.from_env()
    except ValueError as exc:
        raise UserError(f"{exc}; {HOW_TO_CONNECT}") from exc
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    listener = multipart_listener(
        config,
        function,
        batch_size=batch_size,
        job=job,
        concurrency=concurrency,
        timeout=timeout,
    )
    typer.echo(f"listening for {job} at {config.base_url} (Ctrl-C stops)")
    try:
        listener.run_forever()
    except AuthError:
        raise typer.Exit(1) from None  # the listener has logged why, once


@app.command()
def probe(
    out: Annotated[Path, typer.Option(help="Where to write the profile (JSON).")],
    sheet: Annotated[
        str | None,
        typer.Option(help="A sheet with records, to measure the page cost (default: none)."),
    ] = None,
    samples: Annotated[int, typer.Option(min=2, help="Timed GET /environments.")] = 10,
    max_burst_requests: Annotated[
        int, typer.Option(min=0, help="Most requests sent to find the rate limit (0: skip).")
    ] = 50,
) -> None:
    """Measure a server's latency, page cost and rate limit into a simulator profile.

    Connects with FLATFILE_API_KEY / FLATFILE_API_URL (Flatfile, or any compatible server);
    sends at most 2 + 2 x samples + 9 + max-burst-requests requests, one at a time. Load
    the profile with `splitkit serve --simulate FILE`.
    """
    from splitkit.api import ApiError, ConnectionFailedError
    from splitkit.probing import probe as measure

    if not any(os.environ.get(name) for name in ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")):
        raise UserError(f"no API key to connect with: {HOW_TO_CONNECT}")
    try:
        profile = measure(sheet_id=sheet, samples=samples, max_burst_requests=max_burst_requests)
    except ValueError as exc:
        raise UserError(f"{exc}; {HOW_TO_CONNECT}") from exc
    except (ApiError, ConnectionFailedError) as exc:
        raise UserError(f"the probe could not measure: {exc}") from exc
    profile.save(out)
    typer.echo(profile.describe())
    typer.echo(f"wrote {out}: load it with `splitkit serve --simulate {out}`")


def _import_handler(spec: str) -> Callable[..., object]:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise UserError(
            f"the handler must be module:function (e.g. mypkg.jobs:handle), got {spec!r}"
        )
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise UserError(
            f"cannot load the handler {spec!r}: {exc}; is its module importable from here "
            "(installed, or on PYTHONPATH)?"
        ) from exc
    if not callable(function):
        raise UserError(f"the handler {spec!r} is not callable: name a function")
    return cast(Callable[..., object], function)


def main() -> None:
    app(prog_name="splitkit")


if __name__ == "__main__":  # python -m splitkit.cli
    main()
