"""create_app(config): the FastAPI app of the embedded Flatfile-compatible server."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from . import errors
from .auth import token_checker
from .config import ServerConfig
from .fastlane import FastLane
from .limits import BodyGuard
from .routes import ROUTERS
from .simulator import Simulator, SimulatorMiddleware
from .store import Store


def create_app(
    config: ServerConfig, store: Store | None = None, simulator: Simulator | None = None
) -> FastAPI:
    """The app over ``config.db_path`` (or over ``store``, already open on that file).
    ``simulator`` (off when None) imitates a platform's latency, limits and failures.

    The database is opened here, not in a startup hook, so the app works under any
    transport, lifespan or not. ``app.state.store`` is the store; close it after serving.
    """
    app = FastAPI(
        title="splitkit embedded Flatfile server",
        version="1",
        description="The subset of the Flatfile API that splitkit uses, served from SQLite.",
        # the Node listener's ack sends no Content-Type: read a body without one as JSON
        strict_content_type=False,
    )
    app.state.config = config
    app.state.store = store if store is not None else Store(config.db_path)
    app.state.simulator = simulator
    errors.install(app)
    # every body passes the size and JSON checks once, before any route reads it
    app.add_middleware(BodyGuard, max_body_bytes=config.max_body_bytes)
    # a part's ack, records page and complete skip the stack below (fastlane.py)
    app.add_middleware(
        FastLane,
        store=app.state.store,
        token=config.token,
        max_body_bytes=config.max_body_bytes,
    )
    # outermost, over the fast lane too: every answer, refusals included, pays latency
    if simulator is not None:
        app.add_middleware(SimulatorMiddleware, simulator=simulator)
    auth = Depends(token_checker(config.token))
    for router in ROUTERS:
        app.include_router(router, prefix="/v1", dependencies=[auth])
    return app
