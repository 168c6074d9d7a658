"""The HTTP client the platform gives connectors (``ctx.http``).

Timeouts on every request, a user agent naming OpenAgg and the connector, no proxy
from the environment, and, unless the operator allows it, no connection to a private,
loopback or link-local address. The guard sits where the connection is opened: the
name is resolved once, every address it gives is checked, and the connection goes
to a checked address, so a name that changes what it points at between a check and
the request (DNS rebinding) does not get through.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from importlib import metadata

import httpcore
import httpx

from openagg.netguard import address_allowed

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
PRIVATE_ADDRESS_HINT = (
    "set OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES=true to let connectors reach your own network"
)


class PrivateAddressRefused(httpcore.ConnectError):
    """The host resolves to an address connectors may not reach."""


class _PublicOnly(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        if not addresses or not all(address_allowed(a) for a in addresses):
            raise PrivateAddressRefused(
                f"{host} resolves to a private or local address; {PRIVATE_ADDRESS_HINT}"
            )
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise PrivateAddressRefused("connectors may not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to pass a network backend: rebuild it
        # with the same TLS context and ours.
        pool = self._pool
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=pool._ssl_context,
            max_connections=pool._max_connections,
            max_keepalive_connections=pool._max_keepalive_connections,
            keepalive_expiry=pool._keepalive_expiry,
            network_backend=_PublicOnly(),
        )


def user_agent(connector: str) -> str:
    try:
        version = metadata.version("openagg")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"OpenAgg/{version} (connector {connector})"


def connector_client(connector: str, *, allow_private: bool) -> httpx.AsyncClient:
    """A client for one connector's requests."""
    transport = httpx.AsyncHTTPTransport(trust_env=False) if allow_private else _GuardedTransport()
    return httpx.AsyncClient(
        transport=transport,
        timeout=TIMEOUT,
        headers={"User-Agent": user_agent(connector)},
        trust_env=False,
        follow_redirects=False,
    )
