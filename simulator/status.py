"""The lookup endpoints: call status (voice), Voice OTP status (rest) and the balance.

A status lookup answers 105 for an SMSID it does not know, for one sent through the other
service (voice ids on rest, OTP ids on voice), for a sandbox send, and for a known one during
``status_not_ready_s`` real seconds after it was accepted. A trailing space in the id is
ignored. Bodies follow the documents: voice success uses ``CodeResponse``, voice errors
``CodeResult`` + ``ErrorMessage``; the rest status always ``CodeResponse``.
"""

from __future__ import annotations

from simulator import codes
from simulator.codes import EsmsError, send_error_body
from simulator.engine import Simulator
from simulator.params import Params
from simulator.sending import Reply, check_auth
from simulator.state import CallRecord
from simulator.timeline import FINISHED, SEND_STATUS_WAITING, phase_at


def find(sim: Simulator, smsid: str, *, otp: bool, now: float) -> CallRecord:
    """The record a status lookup may see; 105 otherwise. Counts the lookup."""
    smsid = smsid.strip()
    sim.state.stats.status_requests[smsid] += 1
    record = sim.state.ledger.get(smsid)
    if record is None or record.sandbox or (record.kind == "otp") != otp:
        raise EsmsError(codes.NOT_FOUND_SMSID)
    record.status_requests += 1
    if now - record.accepted_at < sim.config.status_not_ready_s:
        raise EsmsError(codes.NOT_FOUND_SMSID)
    return record


def voice_status(sim: Simulator, params: Params, now: float) -> Reply:
    """GetSendStatus on the voice service (``ReferenceId``)."""
    try:
        check_auth(sim.config, params)
        record = find(sim, params.get("ReferenceId"), otp=False, now=now)
    except EsmsError as error:
        return Reply(send_error_body(error), error.code)
    phase = phase_at(record.plan, now)
    done = phase.state == FINISHED
    body: dict[str, object] = {
        "CallDuration": record.plan.call_duration_s if done else 0,
        "CallStatus": record.call_status() if done else "",
        "CodeResponse": codes.OK,
        "Ivr": "",
        "ReferenceId": record.smsid,
        "SendStatus": phase.send_status,
        "SentResult": record.sent_result if done else 0,
    }
    return Reply(body, codes.OK)


def otp_status(sim: Simulator, params: Params, now: float) -> Reply:
    """GetSendStatus on the rest service (``RefId``), SMS-style."""
    ref_id = params.get("RefId")
    try:
        check_auth(sim.config, params)
        record = find(sim, ref_id, otp=True, now=now)
    except EsmsError as error:
        return Reply({"CodeResponse": error.code, "SMSID": ref_id}, error.code)
    phase = phase_at(record.plan, now)
    done = phase.state == FINISHED
    ok = done and record.sent_ok
    failed = done and not record.sent_ok
    body: dict[str, object] = {
        "CodeResponse": codes.OK,
        "SMSID": record.smsid,
        "SendFailed": 1 if failed else 0,
        "SendStatus": phase.send_status,
        "SendSuccess": 1 if ok else 0,
        "TotalPrice": float(0 if failed else record.price),
        "TotalReceiver": 1,
        "TotalSent": 0 if phase.send_status == SEND_STATUS_WAITING else 1,
    }
    return Reply(body, codes.OK)


def balance(sim: Simulator, params: Params) -> Reply:
    """GetBalance_json."""
    try:
        check_auth(sim.config, params)
    except EsmsError as error:
        body: dict[str, object] = {
            "Balance": 0,
            "CodeResponse": error.code,
            "ErrorMessage": error.message,
        }
        return Reply(body, error.code)
    body = {"Balance": sim.state.balance, "CodeResponse": codes.OK, "UserID": sim.config.user_id}
    return Reply(body, codes.OK)
