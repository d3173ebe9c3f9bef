"""The ``splitkit`` command: a thin layer over the library (one function per command)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, cast

import typer

app = typer.Typer(help="Flatfile multi-part jobs: the embedded server and the tools around it.")


@app.callback(no_args_is_help=True)
def _root() -> None:
    """Flatfile multi-part jobs: the embedded server and the tools around it."""


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
) -> None:
    """Run the embedded Flatfile-compatible server until Ctrl-C."""
    from splitkit.server import EmbeddedServer
    from splitkit.server.config import DEFAULT_MAX_BODY_MB

    if sample is not None and records is not None:
        raise typer.BadParameter("pass --sample or --records, not both")
    server = EmbeddedServer(
        db_path=db,
        token=token,
        host=host,
        port=port,
        sample=sample,
        records=records,
        seed=seed,
        max_body_mb=DEFAULT_MAX_BODY_MB if max_body_mb is None else max_body_mb,
    )
    with server:
        typer.echo(f"splitkit server at   {server.url}")
        typer.echo(f"token                {server.token}")
        typer.echo(f"environment id       {server.environment_id}")
        typer.echo(f"request body limit   {server.max_body_mb:g} MiB (--max-body-mb)")
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


@app.command()
def demo(
    records: Annotated[int, typer.Option(min=1, help="Generated records in the sheet.")] = 100_000,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per part.")] = 1_000,
    concurrency: Annotated[int, typer.Option(min=1, help="Parts processed at once.")] = 8,
) -> None:
    """The main job: the whole pipeline on the embedded server with sample data."""
    from splitkit.demo import run_demo

    run_demo(records=records, batch_size=batch_size, concurrency=concurrency)


@app.command()
def listen(
    handler: Annotated[
        str, typer.Argument(help="The part handler, as module:function (e.g. mypkg.jobs:handle).")
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="Records per part.")] = 1_000,
    job: Annotated[str, typer.Option(help="The parent jobs to handle, as type:operation.")] = (
        "sheet:submitLargeSheet"
    ),
) -> None:
    """Run the event-driven flow until Ctrl-C: split parents, process parts, settle parents.

    Connects with FLATFILE_API_KEY / FLATFILE_API_URL / FLATFILE_ENVIRONMENT_ID.
    """
    from splitkit.api import AuthError, ClientConfig
    from splitkit.listener import multipart_listener

    function = _import_handler(handler)
    config = ClientConfig.from_env()
    listener = multipart_listener(config, function, batch_size=batch_size, job=job)
    typer.echo(f"listening for {job} at {config.base_url} (Ctrl-C stops)")
    try:
        listener.run_forever()
    except AuthError:
        raise typer.Exit(1) from None  # the listener has logged why, once


def _import_handler(spec: str) -> Callable[..., object]:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise typer.BadParameter(f"handler must be module:function, got {spec!r}")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot load handler {spec!r}: {exc}") from exc
    if not callable(function):
        raise typer.BadParameter(f"handler {spec!r} is not callable")
    return cast(Callable[..., object], function)


def main() -> None:
    app()


if __name__ == "__main__":  # python -m splitkit.cli
    main()
