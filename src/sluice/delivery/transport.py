"""Sending requests to vendors with aiohttp, refusing private destinations.

One ``ClientSession`` per process pools connections per vendor host. Redirects are not
followed (a redirect could lead to a private address), and every address a name resolves
to is checked before connecting unless ``SLUICE_ALLOW_PRIVATE_DESTINATIONS`` is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from sluice.connectors.definition import HttpRequest, HttpResponse

MAX_RESPONSE_BYTES = 1_000_000


class TransportError(Exception):
    """A request got no HTTP answer: ``kind`` is ``timeout`` or ``connection``."""

    def __init__(self, kind: str, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.refused = refused  # a private destination we would not connect to


class Transport(Protocol):
    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse: ...

    async def close(self) -> None: ...


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        # Neither private nor global: the carrier-grade NAT range 100.64.0.0/10, which
        # reaches a provider's internal network.
        or not ip.is_global
    )


class GuardedResolver(AbstractResolver):
    """Resolves with an inner resolver, then refuses loopback and private addresses."""

    def __init__(self, inner: AbstractResolver | None = None, *, allow_private: bool) -> None:
        self.inner = inner or aiohttp.ThreadedResolver()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not self.allow_private:
            for result in results:
                if is_private(result["host"]):
                    raise DestinationRefused(host, result["host"])
        return results

    async def close(self) -> None:
        await self.inner.close()


class DestinationRefused(OSError):
    def __init__(self, host: str, address: str) -> None:
        super().__init__(
            f"refused to connect to {host} ({address}): a private or loopback address "
            "(set SLUICE_ALLOW_PRIVATE_DESTINATIONS to allow)"
        )


def check_literal_host(url: str, allow_private: bool) -> None:
    """Resolvers are skipped for IP literals, so those are checked here."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TransportError("connection", f"unsupported URL scheme {parts.scheme!r}", refused=True)
    host = parts.hostname or ""
    if not host:
        raise TransportError("connection", "the URL has no host", refused=True)
    if allow_private:
        return
    try:
        private = is_private(host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if private:
        raise TransportError("connection", str(DestinationRefused(host, host)), refused=True)


class AiohttpTransport:
    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: AbstractResolver | None = None,
        limit: int = 1000,
        limit_per_host: int = 256,
    ) -> None:
        self._resolver = GuardedResolver(resolver, allow_private=allow_private)
        self._allow_private = allow_private
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None
        # Per-request work that only depends on the URL or the timeout, done once.
        self._checked_urls: dict[str, None] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def allow_private(self) -> bool:
        return self._allow_private

    @allow_private.setter
    def allow_private(self, value: bool) -> None:
        self._allow_private = value
        self._resolver.allow_private = value
        self._checked_urls.clear()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                resolver=self._resolver,
                ttl_dns_cache=60,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "Sluice"},
            )
        return self._session

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        if request.url not in self._checked_urls:
            check_literal_host(request.url, self.allow_private)
            if len(self._checked_urls) > 10_000:
                self._checked_urls.clear()
            self._checked_urls[request.url] = None
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        session = self._get_session()
        started = time.perf_counter()
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=client_timeout,
            ) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                headers = {k.lower(): v for k, v in response.headers.items()}
                status = response.status
        except TimeoutError as exc:
            raise TransportError("timeout", f"no answer within {timeout:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, DestinationRefused)
            raise TransportError("connection", str(exc.os_error or exc), refused=refused) from exc
        except DestinationRefused as exc:
            raise TransportError("connection", str(exc), refused=True) from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            message = str(exc) or type(exc).__name__
            raise TransportError("connection", message) from exc
        elapsed = (time.perf_counter() - started) * 1000
        return HttpResponse(status=status, headers=headers, body=body, elapsed_ms=elapsed)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def describe(request: HttpRequest) -> dict[str, Any]:
    return {"method": request.method, "url": request.url}
