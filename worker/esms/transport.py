"""The asyncio eSMS client's transport: httpx's request and response, aiohttp's connection pool.

httpx's own asyncio stack (httpcore over anyio) spent about 2.5 ms of CPU per eSMS request
here, most of it in its pool, which looks at every connection and waiting request whenever a
request starts or ends; aiohttp's pool spent about 0.6 ms, less than httpx's blocking client
(measured against the simulator: bench/figures/send_overhead.py's notes). So the worker keeps
httpx's API (requests, responses, timeouts, exceptions: worker.esms.client is unchanged)
and sends through aiohttp.

The URL is handed over exactly as built: eSMS's parameters are percent-encoded by
worker.esms.params (``CallbackUrl`` fully URL-encoded), and aiohttp would otherwise
re-quote it (``%2F`` back to ``/``). eSMS bodies are small, so an answer is read whole, at
most ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
import yarl

MAX_BODY_BYTES = 1_000_000


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` on one aiohttp session (created on first use, in the
    running loop)."""

    def __init__(self, *, max_connections: int, keepalive_s: float = 15.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._tls = ssl.create_default_context()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_s,
                ssl=self._tls,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, trust_env=False
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = request.content or None
        try:
            async with self._get_session().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as answer:
                content = await answer.content.read(MAX_BODY_BYTES)
                return httpx.Response(
                    answer.status,
                    headers=answer.raw_headers,
                    content=content,
                    request=request,
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
