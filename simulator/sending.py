"""The send endpoints: Voice OTP (SmsType 8), MakeCallRecord_V2 and MakeCallTemplate_V2.

Checks run in this order, the first failing one answers: ApiKey/SecretKey (101), TPS (160),
SmsType (118, OTP only), Phone (163, 108, 99), Content (110, OTP) / template or recording
(104, 106), Brandname (104, OTP), optional fields (110), SendDate (110), RequestId (110 if
over 50 characters, 124 if used in the window), balance (103). Then the call is accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from simulator import codes
from simulator.codes import EsmsError
from simulator.config import ANY, SimConfig
from simulator.engine import Simulator
from simulator.outcomes import decide
from simulator.params import Params
from simulator.phones import national, national_or_none
from simulator.state import CallKind, CallRecord
from simulator.timeline import plan_call

OTP_SEND_DATE = "%Y-%m-%d %H:%M:%S"  # yyyy-mm-dd HH:MM:SS (Voice OTP)
VOICE_SEND_DATE = "%Y/%m/%d %H:%M:%S"  # yyyy/MM/dd HH:mm:ss (record and template calls)
REQUEST_ID_MAX = 50
VOICES = frozenset({"male", "female", "hatieumai", "ngoclam"})


@dataclass(frozen=True)
class Reply:
    """A JSON answer of an eSMS endpoint, its result code, and whether a call was accepted."""

    body: dict[str, object]
    code: str
    accepted: bool = False


def check_auth(config: SimConfig, params: Params) -> None:
    """101 unless ApiKey and SecretKey are the configured ones."""
    if (params.get("ApiKey"), params.get("SecretKey")) != (config.api_key, config.secret_key):
        raise EsmsError(codes.AUTH_FAILED)


def parse_send_date(text: str, fmt: str, zone: ZoneInfo) -> datetime | None:
    """SendDate read in ``zone``; None if absent; 110 if it does not match ``fmt``."""
    if not text:
        return None
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=zone)
    except ValueError:
        shown = fmt.replace("%Y", "yyyy").replace("%m", "MM").replace("%d", "dd")
        shown = shown.replace("%H", "HH").replace("%M", "mm").replace("%S", "ss")
        raise EsmsError(codes.BAD_REQUEST, f"SendDate invalid, expected {shown}") from None


def check_phone(config: SimConfig, params: Params) -> tuple[str, str]:
    """The phone as sent and in national form; 163, 108 or 99 if refused."""
    phone = params.get("Phone")
    number = national(phone)
    blocked = {national_or_none(item) or item for item in config.blocked_phones}
    if number in blocked:
        raise EsmsError(codes.BLOCKED)
    return phone, number


def check_request_id(sim: Simulator, params: Params, now: float, *names: str) -> str:
    """The RequestId (may be ""); 110 if too long, 124 if used within the window."""
    request_id = params.get(*names)
    if len(request_id) > REQUEST_ID_MAX:
        raise EsmsError(codes.BAD_REQUEST, f"RequestId longer than {REQUEST_ID_MAX} characters")
    window = sim.config.scaled(sim.config.request_id_window_s)
    if request_id and sim.state.request_id_taken(request_id, now, window):
        raise EsmsError(codes.DUPLICATE_REQUEST_ID)
    return request_id


def check_balance(sim: Simulator) -> None:
    """103 if the balance cannot pay one call."""
    if sim.state.balance < sim.config.price:
        raise EsmsError(codes.NO_BALANCE)


def check_tps(sim: Simulator, now: float) -> None:
    """160 if this send is beyond the TPS limit."""
    if sim.state.over_tps(now, sim.config.tps_limit):
        sim.state.stats.faults["tps_rejected"] += 1
        raise EsmsError(codes.TPS_EXCEEDED)


def in_catalogue(item: str, catalogue: list[str]) -> bool:
    """Whether ``item`` is in ``catalogue`` (which may hold ``*``, any)."""
    return bool(item) and (ANY in catalogue or item in catalogue)


@dataclass(frozen=True)
class Dialing:
    """How a call dials: redials, seconds between them, plays of the message."""

    max_retry: int
    wait_retry_s: float
    max_repeat: int


def new_record(
    sim: Simulator,
    *,
    kind: CallKind,
    endpoint: str,
    params: Params,
    phone: tuple[str, str],
    send_date: datetime | None,
    request_id: str,
    dialing: Dialing,
    now: float,
    sandbox: bool = False,
) -> CallRecord:
    """A record for an accepted call, its outcome decided and its life planned."""
    config = sim.config
    outcome = decide(
        phone[1], config.rules, p_noanswer=config.p_noanswer, p_fail=config.p_fail, rng=sim.rng
    )
    delay = max(0.0, send_date.timestamp() - now) if send_date else 0.0
    play_simulated_s = config.recording_s * dialing.max_repeat
    plan = plan_call(
        outcome,
        starts_at=now + config.scaled(delay),
        max_retry=dialing.max_retry,
        ring=config.scaled(config.ring_s),
        gap=config.scaled(dialing.wait_retry_s),
        play=config.scaled(play_simulated_s),
        play_simulated_s=play_simulated_s,
    )
    smsid = str(uuid.uuid4()) if kind != "otp" else f"{uuid.uuid4()}{sim.rng.randint(10, 999)}"
    return CallRecord(
        smsid=smsid,
        kind=kind,
        endpoint=endpoint,
        request_id=request_id,
        phone=phone[0],
        national=phone[1],
        params=params.public(),
        accepted_at=now,
        send_date=send_date,
        sandbox=sandbox,
        outcome=outcome,
        plan=plan,
        max_retry=dialing.max_retry,
        wait_retry_s=dialing.wait_retry_s,
        max_repeat=dialing.max_repeat,
        price=0 if sandbox else config.price,
        callback_url=params.get("CallbackUrl"),
    )


def send_otp(sim: Simulator, endpoint: str, params: Params, now: float) -> Reply:
    """SendMultipleMessage_V4 (GET or POST JSON) with SmsType 8: a Voice OTP call."""
    config = sim.config
    check_auth(config, params)
    check_tps(sim, now)
    if params.get("SmsType") != "8":
        raise EsmsError(codes.BAD_SMS_TYPE)
    phone = check_phone(config, params)
    if not params.get("Content"):
        raise EsmsError(codes.BAD_REQUEST, "Content is required")
    brandname = params.get("Brandname")
    if brandname and config.brandnames and brandname not in config.brandnames:
        raise EsmsError(codes.NOT_FOUND_TEMPLATE, "Brandname not found")
    send_date = parse_send_date(params.get("SendDate"), OTP_SEND_DATE, config.zone)
    sandbox = params.get("Sandbox") in ("1", "true", "True")
    request_id = "" if sandbox else check_request_id(sim, params, now, "RequestId")
    if not sandbox:
        check_balance(sim)
    dialing = Dialing(config.otp_max_retry, config.default_wait_retry_s, 1)
    record = new_record(
        sim,
        kind="otp",
        endpoint=endpoint,
        params=params,
        phone=phone,
        send_date=send_date,
        request_id=request_id,
        dialing=dialing,
        now=now,
        sandbox=sandbox,
    )
    sim.accept(record)
    body = {"CodeResult": codes.OK, "CountRegenerate": 0, "SMSID": record.smsid}
    return Reply(body, codes.OK, accepted=True)


def voice_dialing(config: SimConfig, params: Params) -> Dialing:
    """MaxRetry, WaitRetry, MaxRepeat (110 if malformed); the other optional fields checked."""
    params.int_in("TimeWaitToIvr", 0, 0, 3600)
    ivr = params.get("Ivr")
    if ivr and not (len(ivr) == 1 and ivr.isdigit()):
        raise EsmsError(codes.BAD_REQUEST, "Ivr must be one key 0-9")
    params.int_in("Speed", 0, -3, 3)
    voice = params.get("Voice")
    if voice and voice not in VOICES:
        raise EsmsError(codes.BAD_REQUEST, "Voice must be male, female, hatieumai or ngoclam")
    return Dialing(
        max_retry=params.int_in("MaxRetry", config.default_max_retry, 0, 10),
        wait_retry_s=float(
            params.int_in("WaitRetry", round(config.default_wait_retry_s), 0, 86_400)
        ),
        max_repeat=max(1, params.int_in("MaxRepeat", config.default_max_repeat, 0, 10)),
    )


def send_voice(sim: Simulator, kind: CallKind, endpoint: str, params: Params, now: float) -> Reply:
    """MakeCallRecord_V2 (``kind`` "record") or MakeCallTemplate_V2 ("template")."""
    config = sim.config
    check_auth(config, params)
    check_tps(sim, now)
    phone = check_phone(config, params)
    template_id = params.get("TemplateId")
    if kind == "record" and not in_catalogue(template_id, config.recordings):
        raise EsmsError(codes.NOT_FOUND_RECORDING)
    if kind == "template" and not in_catalogue(template_id, config.templates):
        raise EsmsError(codes.NOT_FOUND_TEMPLATE)
    dialing = voice_dialing(config, params)
    send_date = parse_send_date(params.get("SendDate"), VOICE_SEND_DATE, config.zone)
    request_id = check_request_id(sim, params, now, "RequestID", "RequestId")
    check_balance(sim)
    record = new_record(
        sim,
        kind=kind,
        endpoint=endpoint,
        params=params,
        phone=phone,
        send_date=send_date,
        request_id=request_id,
        dialing=dialing,
        now=now,
    )
    sim.accept(record)
    smsid = record.smsid + (" " if config.smsid_trailing_space else "")
    body = {"CodeResult": codes.OK, "CountRegenerate": 0, "SMSID": smsid}
    return Reply(body, codes.OK, accepted=True)
