"""Faults on demand for the eSMS endpoints: latency, IIS 500 pages, hangs, lost or withheld
responses.

Each draw uses the simulator's seeded random generator, so ``--seed`` makes a run
reproducible. The ``/_sim`` control endpoints never see a fault.
"""

from __future__ import annotations

import asyncio
import random

from fastapi.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from simulator.config import SimConfig
from simulator.state import Stats

IIS_HEADERS = {"Server": "Microsoft-IIS/10.0", "X-Powered-By": "ASP.NET"}

_IIS_PAGE = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" \
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>{status} - {title}</title>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>{status} - {title}</h2>
  <h3>{detail}</h3>
 </fieldset></div>
</div>
</body>
</html>
"""


def iis_page(status: int, title: str, detail: str) -> HTMLResponse:
    """An error page as IIS serves it, with IIS's headers."""
    body = _IIS_PAGE.format(status=status, title=title, detail=detail)
    return HTMLResponse(body, status_code=status, headers=IIS_HEADERS)


def latency_s(config: SimConfig, rng: random.Random) -> float:
    """One draw of the configured response latency, in real seconds."""
    if config.latency_dist == "normal":
        millis = rng.gauss(config.latency_ms, config.jitter_ms)
    else:
        millis = config.latency_ms + rng.uniform(0.0, config.jitter_ms)
    return max(0.0, millis) / 1000.0


async def before_handling(
    config: SimConfig, rng: random.Random, stats: Stats, *, is_send: bool
) -> Response | None:
    """Apply latency, then maybe answer with a 500 page or hang; None: handle normally."""
    if config.fault_scope == "send" and not is_send:
        return None
    delay = latency_s(config, rng)
    if delay > 0:
        stats.faults["delayed"] += 1
        await asyncio.sleep(delay)
    if config.error_rate and rng.random() < config.error_rate:
        stats.faults["http_500"] += 1
        return iis_page(
            500,
            "Internal server error.",
            "There is a problem with the resource you are looking for, and it cannot be displayed.",
        )
    if config.timeout_rate and rng.random() < config.timeout_rate:
        stats.faults["timeout"] += 1
        await asyncio.sleep(config.hang_s)
        return iis_page(504, "Gateway Timeout.", "The request timed out.")
    return None


class CutResponse(Response):
    """A 200 JSON response cut in the middle of its body: the client sees the connection drop.

    It announces a longer body than it sends and returns; the server then closes the socket.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status line, headers and part of the body, then stop."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", b"512"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b'{"CodeResult":"1', "more_body": True})


def lost_response(config: SimConfig, rng: random.Random, stats: Stats) -> Response | None:
    """For an accepted send: maybe a lost response (cut connection or empty 502), else None."""
    if not config.accept_then_drop_rate or rng.random() >= config.accept_then_drop_rate:
        return None
    stats.faults["accept_then_drop"] += 1
    if config.drop_mode == "502":
        return Response(status_code=502)
    return CutResponse()


async def withhold_answer(config: SimConfig, rng: random.Random, stats: Stats) -> None:
    """For an accepted send: maybe hold its answer back ``hang_s`` real seconds (the call is
    already in the ledger and runs), as a provider that accepted a call but hangs."""
    if not config.accept_then_hang_rate or rng.random() >= config.accept_then_hang_rate:
        return
    stats.faults["accept_then_hang"] += 1
    await asyncio.sleep(config.hang_s)
