"""The idle culler reaches a hub API that listens on a Unix socket only."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_unix_socket
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from tornado.web import Application, RequestHandler

from enclave.hub.culler import HUB_HOST, HubSocketResolver


class _Users(RequestHandler):
    def get(self) -> None:
        self.write({"users": [], "host": self.request.host})


def test_the_hub_host_name_resolves_to_the_socket_and_others_resolve_as_usual(
        tmp_path: Path) -> None:
    async def go() -> tuple[list[tuple[int, object]], list[tuple[int, object]]]:
        resolver = HubSocketResolver(socket_path=str(tmp_path / "hub.sock"))
        return (await resolver.resolve(HUB_HOST, 80),
                await resolver.resolve("127.0.0.1", 80, socket.AF_INET))

    hub, other = asyncio.run(go())
    assert hub == [(socket.AF_UNIX, str(tmp_path / "hub.sock"))]
    assert other and other[0][0] == socket.AF_INET


def test_tornados_client_talks_http_to_the_hub_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "hub.sock")

    async def go() -> bytes:
        server = HTTPServer(Application([(r"/hub/api/users", _Users)]))
        server.add_socket(bind_unix_socket(path))
        client = SimpleAsyncHTTPClient(force_instance=True,
                                       resolver=HubSocketResolver(socket_path=path))
        try:
            response = await client.fetch(f"http://{HUB_HOST}/hub/api/users")
        finally:
            client.close()
            server.stop()
            await server.close_all_connections()
        return bytes(response.body)

    assert b'"users": []' in asyncio.run(go())
