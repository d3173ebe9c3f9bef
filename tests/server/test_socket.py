"""The embedded server's connections send small answers at once (TCP_NODELAY).

Without it, each request on a kept-alive connection waited ~40 ms: uvicorn writes an
answer's head and body separately, and Nagle's algorithm holds the second write until the
client's delayed ACK of the first. Checked on the server's side of a live connection.
"""

from __future__ import annotations

import socket

import httpx

from splitkit.server import EmbeddedServer


def test_accepted_connections_have_tcp_nodelay() -> None:
    with (
        EmbeddedServer() as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
        ) as client,
    ):
        assert client.get("/environments").status_code == 200  # the connection stays open
        assert server._server is not None
        connections = list(server._server.server_state.connections)
        assert connections, "no open connection on the server"
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
