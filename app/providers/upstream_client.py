"""The one pooled httpx.AsyncClient every upstream call goes through, and what carries it.

httpx stays the API the providers see; underneath, by default, aiohttp's connection pool does
the I/O (the `httpx-aiohttp` transport, the one the openai SDK offers as its
`DefaultAioHttpClient`). Under load httpcore's own pool spent a sixth of Rapport's CPU on
anyio task and socket lookups and a readable-socket probe on every reuse; on aiohttp a stored
create costs about a quarter less CPU (bench/RESULTS.md). `RAPPORT_UPSTREAM_TRANSPORT=httpx`
goes back to httpcore.

The aiohttp transport names some connection failures timeouts (a refused or reset connection
becomes `httpx.ConnectTimeout`); `ClassifiedAiohttpTransport` re-raises those as the httpx
errors httpcore would have raised, so `upstream_http` classifies both transports alike:

    aiohttp.ServerTimeoutError (connect or read)   → httpx.TimeoutException (unchanged)
    aiohttp.ClientConnectorError                   → httpx.ConnectError
    any other aiohttp connection or payload error  → httpx.ReadError
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from app.config import UpstreamTransport

LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)


def upstream_client(transport: UpstreamTransport, timeout: httpx.Timeout) -> httpx.AsyncClient:
    carrier: httpx.AsyncBaseTransport
    if transport == "httpx":
        carrier = httpx.AsyncHTTPTransport(retries=2, limits=LIMITS)
    else:
        carrier = ClassifiedAiohttpTransport(limits=LIMITS)
    return httpx.AsyncClient(timeout=timeout, transport=carrier, follow_redirects=False)


def _classified(exc: Exception) -> Exception:
    """The httpx error httpcore would have raised for the aiohttp fault behind `exc`."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) else exc
    if not isinstance(cause, aiohttp.ClientError) or isinstance(cause, aiohttp.ServerTimeoutError):
        return exc
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(cause))
    return httpx.ReadError(str(cause) or type(cause).__name__)


class ClassifiedAiohttpTransport(AiohttpTransport):
    def get_client(self) -> aiohttp.ClientSession:
        """httpx keeps the cookies (as it does over httpcore); a jar in aiohttp too would send
        them twice."""
        connector = aiohttp.TCPConnector(
            limit=LIMITS.max_connections or 0,
            keepalive_timeout=LIMITS.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.userinfo:
            # httpx has made them the Authorization header already; aiohttp refuses both.
            request.url = request.url.copy_with(userinfo=b"")
        try:
            response = await super().handle_async_request(request)
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise _classified(exc) from exc.__cause__ or exc
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _ClassifiedStream(response.stream)
        return response


class _ClassifiedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise _classified(exc) from exc.__cause__ or exc

    async def aclose(self) -> None:
        await self._inner.aclose()
