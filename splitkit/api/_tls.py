"""The verified SSL context every client of the process shares.

httpx and its aiohttp transport each build a fresh ``ssl.SSLContext`` per client when
given ``verify=True``, loading the whole CA bundle: ~40-60 ms each, paid by every
``Client``, ``AsyncClient`` and so every ``dispatch()`` (even over plain http to the
embedded server: a client may still be handed an absolute https URL). Built once here
instead, by httpx itself (``httpx.create_ssl_context(verify=True)``), and passed as
``verify=``: certificates and host names are checked exactly as before.

httpx picks the CA source when a client is made: ``SSL_CERT_FILE``, else
``SSL_CERT_DIR``, when the client trusts the environment (``trust_env``), else
certifi's bundle. So one context is kept per (``trust_env``, those two variables).

Sharing: an ``SSLContext`` serves many connections, threads and event loops at once.
httpcore sets its ALPN protocols on each new connection, always to ``["http/1.1"]`` here
(no client speaks HTTP/2): threads may rewrite that list at once, the same race httpx
already has inside one client shared by threads, now across clients, always with the
same value.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading

import httpx

__all__ = ["verified_context"]

_lock = threading.Lock()


def _fresh_lock() -> None:
    global _lock
    _lock = threading.Lock()  # a fork while another thread held it would leave it held


os.register_at_fork(after_in_child=_fresh_lock)


@functools.cache
def _context(trust_env: bool, cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # The variables are only the cache key: httpx reads them itself, as it always has.
    return httpx.create_ssl_context(verify=True, trust_env=trust_env)


def verified_context(trust_env: bool) -> ssl.SSLContext:
    """The process's verifying context for a client with this ``trust_env``, made on
    first use (the same one httpx would make for it)."""
    # functools.cache alone may build it twice when two threads miss at once.
    with _lock:
        if not trust_env:
            return _context(False, None, None)
        env = os.environ
        return _context(True, env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None)
