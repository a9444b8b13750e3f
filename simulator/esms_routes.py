"""The eSMS endpoints, under the rest and voice base paths, each wrapped in the fault layer.

Every request is counted, may be delayed, answered with an IIS 500 page or left hanging
(:mod:`simulator.faults`); an accepted send may have its response lost, or withheld for a
time or until its call's callback was sent. The answers are HTTP 200 with an eSMS code in
the JSON body, as eSMS does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from simulator.codes import EsmsError, send_error_body
from simulator.engine import Simulator
from simulator.faults import (
    IIS_HEADERS,
    before_handling,
    iis_page,
    lost_response,
    withhold_answer,
)
from simulator.params import Params
from simulator.sending import Reply, send_otp, send_voice
from simulator.status import balance, otp_status, voice_status

REST_PREFIX = "/rest/MainService.svc/json"
VOICE_PREFIX = "/voice/MainService.svc/json"

log = logging.getLogger("simulator.esms")

Action = Callable[[Params, float], Reply]


def guarded(action: Action) -> Action:
    """``action`` with a refusal (:class:`EsmsError`) turned into a send-style error reply."""

    def run(params: Params, now: float) -> Reply:
        try:
            return action(params, now)
        except EsmsError as error:
            return Reply(send_error_body(error), error.code)

    return run


async def read_params(request: Request, *, json_body: bool) -> Params | Response:
    """The query string, or the JSON body; a WCF-style 400 page if the body is not JSON."""
    if not json_body:
        return Params(request.query_params.multi_items())
    raw = await request.body()
    try:
        return Params.from_json(json.loads(raw or b"{}"))
    except (ValueError, UnicodeDecodeError):
        return iis_page(400, "Bad Request.", "The request body is not valid JSON.")


async def handle(
    sim: Simulator,
    endpoint: str,
    request: Request,
    action: Action,
    *,
    is_send: bool = False,
    json_body: bool = False,
) -> Response:
    """Count, inject faults, run ``action`` and render its reply."""
    stats = sim.state.stats
    stats.requests[endpoint] += 1
    early = await before_handling(sim.config, sim.rng, stats, is_send=is_send)
    params = early if early is not None else await read_params(request, json_body=json_body)
    if isinstance(params, Response):
        stats.result(endpoint, f"HTTP {params.status_code}")
        log.info("esms endpoint=%s http=%d", endpoint, params.status_code)
        return params
    reply = action(params, time.time())
    stats.result(endpoint, reply.code)
    log.info("esms endpoint=%s code=%s", endpoint, reply.code)
    if reply.accepted:
        lost = lost_response(sim.config, sim.rng, stats)
        if lost is not None:
            log.info("esms endpoint=%s response lost (%s)", endpoint, sim.config.drop_mode)
            return lost
        await withhold_answer(sim.config, sim.rng, stats)
        await _callback_first(sim, reply)
    return JSONResponse(reply.body, headers=IIS_HEADERS, media_type="application/json")


async def _callback_first(sim: Simulator, reply: Reply) -> None:
    """For an accepted send: maybe hold its answer until the call has ended and its callback
    was answered (callback_before_answer_rate), so the callback comes before the SMSID."""
    config = sim.config
    rate = config.callback_before_answer_rate
    if not rate or sim.rng.random() >= rate:
        return
    sim.state.stats.faults["callback_before_answer"] += 1
    await sim.wait_life(str(reply.body.get("SMSID", "")).strip(), config.hang_s)


def esms_router(sim: Simulator) -> APIRouter:
    """The router of every eSMS endpoint the project uses."""
    router = APIRouter(include_in_schema=True, tags=["eSMS"])
    otp_get_name = "rest.SendMultipleMessage_V4_get"
    otp_post_name = "rest.SendMultipleMessage_V4_post_json"
    record_name = "voice.MakeCallRecord_V2"
    template_name = "voice.MakeCallTemplate_V2"

    @router.get(REST_PREFIX + "/SendMultipleMessage_V4_get")
    async def otp_get(request: Request) -> Response:
        """Voice OTP call, query parameters."""
        action = guarded(lambda p, now: send_otp(sim, otp_get_name, p, now))
        return await handle(sim, otp_get_name, request, action, is_send=True)

    @router.post(REST_PREFIX + "/SendMultipleMessage_V4_post_json")
    @router.post(REST_PREFIX + "/SendMultipleMessage_V4_post_json/")
    async def otp_post(request: Request) -> Response:
        """Voice OTP call, JSON body."""
        action = guarded(lambda p, now: send_otp(sim, otp_post_name, p, now))
        return await handle(sim, otp_post_name, request, action, is_send=True, json_body=True)

    @router.get(REST_PREFIX + "/GetSendStatus")
    async def rest_status(request: Request) -> Response:
        """Voice OTP status by SMSID (``RefId``)."""
        return await handle(
            sim, "rest.GetSendStatus", request, lambda p, now: otp_status(sim, p, now)
        )

    @router.post(REST_PREFIX + "/GetBalance_json")
    @router.post(REST_PREFIX + "/GetBalance_json/")
    async def get_balance(request: Request) -> Response:
        """Account balance."""
        return await handle(
            sim, "rest.GetBalance_json", request, lambda p, now: balance(sim, p), json_body=True
        )

    @router.get(VOICE_PREFIX + "/MakeCallRecord_V2")
    async def make_call_record(request: Request) -> Response:
        """A call that plays a recording."""
        action = guarded(lambda p, now: send_voice(sim, "record", record_name, p, now))
        return await handle(sim, record_name, request, action, is_send=True)

    @router.get(VOICE_PREFIX + "/MakeCallTemplate_V2")
    async def make_call_template(request: Request) -> Response:
        """A call from a text-to-speech template."""
        action = guarded(lambda p, now: send_voice(sim, "template", template_name, p, now))
        return await handle(sim, template_name, request, action, is_send=True)

    @router.get(VOICE_PREFIX + "/GetSendStatus")
    async def voice_status_route(request: Request) -> Response:
        """Status of a record or template call (``ReferenceId``)."""
        return await handle(
            sim, "voice.GetSendStatus", request, lambda p, now: voice_status(sim, p, now)
        )

    return router
