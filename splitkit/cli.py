"""The ``splitkit`` command: a thin layer over the library (one function per command)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

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
        str | None, typer.Option(help="Load data/samples/NAME.csv into a sheet.")
    ] = None,
    records: Annotated[
        int | None, typer.Option(min=0, help="Generate N synthetic records into a sheet.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated records.")] = 0,
) -> None:
    """Run the embedded Flatfile-compatible server until Ctrl-C."""
    from splitkit.server import EmbeddedServer

    if sample is not None and records is not None:
        raise typer.BadParameter("pass --sample or --records, not both")
    server = EmbeddedServer(
        db_path=db, token=token, host=host, port=port, sample=sample, records=records, seed=seed
    )
    with server:
        typer.echo(f"splitkit server at   {server.url}")
        typer.echo(f"token                {server.token}")
        typer.echo(f"environment id       {server.environment_id}")
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


def main() -> None:
    app()
