"""No credential and no full phone number in any log line, ours, httpx's or aiohttp's
(decision 7).

A whole DEBUG-level flow runs against a simulator with known, distinctive credentials:
every send endpoint (the worker's way, through AsyncEsmsClient), both status lookups and the
balance (the blocking client), faults with retries, lost answers and refusals. httpx,
httpcore and aiohttp are turned up to DEBUG too, so their own lines (httpx logs each request
URL, credentials included) are in the capture. Then every captured line is searched.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from tests.fixtures.sim import EsmsSim
from voicecall.config.settings import Settings
from voicecall.job.params import OtpParams, RecordParams, TemplateParams
from voicecall.telemetry import logs
from voicecall.telemetry.logs import configure_logging, get_logger
from worker.esms import AsyncEsmsClient, EsmsClient, EsmsError, Submission

API_KEY = "K9x2ApiKeyVoicecallTest77"
SECRET_KEY = "S3cretKeyVoicecallTest-4242"
PHONES = {
    "0901234567": ("0901234567", "84901234567", "+84 90 123 4567", "+84901234567"),
    "0912345678": ("0912345678", "84912345678"),
    "0901234561": ("0901234561", "84901234561"),
}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure_logging at DEBUG into a buffer, httpx/httpcore at DEBUG; all restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._redactor)
    saved_levels = {
        name: logging.getLogger(name).level for name in ("httpx", "httpcore", "aiohttp")
    }
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", secrets=[API_KEY, SECRET_KEY], stream=stream)
    for name in saved_levels:  # stronger than production: httpx's own request lines included
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    root.handlers[:], root.level, logs._redactor = saved
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


def sender(settings: Settings) -> Callable[..., Submission]:
    """Sends the worker's way: AsyncEsmsClient.send, each in a loop of its own."""

    def send(
        call: OtpParams | RecordParams | TemplateParams,
        *,
        phone: str,
        request_id: str,
        callback_url: str | None = None,
    ) -> Submission:
        async def run() -> Submission:
            client = AsyncEsmsClient(settings)
            try:
                return await client.send(
                    call,
                    phone=phone,
                    request_id=request_id,
                    callback_url=callback_url,
                    send_date=None,
                )
            finally:
                await client.close()

        return asyncio.run(run())

    return send


def flow(client: EsmsClient, settings: Settings, sim: EsmsSim) -> None:
    """Every endpoint, every fault, every refusal, with the errors logged as a worker would."""
    log = get_logger("test.flow")
    cb = "https://voicecall.example.vn/v1/esms/callback/job-7/abcdef0123"
    send = sender(settings)
    send_get = sender(settings.model_copy(update={"esms_otp_method": "get"}))
    otp = OtpParams(content="Ma OTP 482915")
    r1 = RecordParams(record_id="R1")

    def attempt(name: str, action: Callable[[], object]) -> None:
        try:
            log.info("step", step=name, result=repr(action()))
        except EsmsError:
            log.exception("step_failed", step=name)

    attempt(
        "otp_post",
        lambda: send(otp, phone="+84 90 123 4567", request_id="otp-1", callback_url=cb),
    )
    attempt("otp_get", lambda: send_get(otp, phone="84901234567", request_id="otp-2"))
    record = send(
        RecordParams(
            record_id="R1", number_forward="0912345678", ivr=1, max_retry=1, wait_retry=30
        ),
        phone="0901234567",
        request_id="rec-1",
        callback_url=cb,
    )
    attempt(
        "template",
        lambda: send(
            TemplateParams(template_id="T1", variables=["Trung", "20000"]),
            phone="0901234561",
            request_id="tpl-1",
        ),
    )
    assert record.smsid
    attempt("status_105", lambda: client.call_status(record.smsid or ""))
    sim.wait_finished(record.smsid)
    attempt("status", lambda: client.call_status(record.smsid or ""))
    attempt("otp_status", lambda: client.otp_status("unknown-id"))
    attempt("balance", client.balance)
    attempt("invalid", lambda: send(r1, phone="+84 90 123 456", request_id="bad"))
    attempt("blocked", lambda: send(r1, phone="0900000099", request_id="blk"))
    sim.configure(error_rate=1.0)
    attempt("http_500", lambda: send(r1, phone="0901234567", request_id="e500"))
    sim.configure(error_rate=0.0, accept_then_drop_rate=1.0)
    attempt("lost_answer", lambda: send(r1, phone="0901234567", request_id="lost"))
    sim.configure(accept_then_drop_rate=0.0, timeout_rate=1.0, hang_s=1.0)
    attempt(
        "timeout",
        lambda: send_get(OtpParams(content="Ma 1"), phone="0901234567", request_id="slow"),
    )


def test_no_credential_or_full_phone_in_any_log_line(
    captured: io.StringIO, esms_sim_factory: Callable[..., EsmsSim]
) -> None:
    """A DEBUG flow against the simulator leaves neither key nor a full phone in any line."""
    sim = esms_sim_factory(api_key=API_KEY, secret_key=SECRET_KEY)
    settings = Settings(
        esms_api_key=API_KEY,
        esms_secret_key=SECRET_KEY,
        esms_rest_url=sim.rest_url,
        esms_voice_url=sim.voice_url,
        esms_attempt_tries=2,
        esms_backoff_base_s=0.01,
        esms_backoff_max_s=0.02,
        esms_read_timeout_s=0.3,
        esms_otp_method="post",
        esms_brandname="",
        esms_sandbox=False,
        timezone="Asia/Ho_Chi_Minh",
    )
    with EsmsClient(settings) as client:
        flow(client, settings, sim)

    lines = captured.getvalue().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    text = "\n".join(lines)
    # the capture is meaningful: httpx's own request lines and our events are in it
    assert any(e.get("logger") == "httpx" and "HTTP Request" in e["event"] for e in events)
    assert any(e.get("logger", "").startswith("httpcore") for e in events)
    assert {"esms_request", "esms_retry", "step", "step_failed"} <= {e["event"] for e in events}
    assert any("exception" in e for e in events)
    for line in lines:
        assert API_KEY not in line and SECRET_KEY not in line, line
        for spellings in PHONES.values():
            for spelling in spellings:
                assert spelling not in line, line
    assert "ApiKey=***" in text  # httpx's URL was cut, not dropped silently


def test_retry_events_name_the_endpoint_never_the_url(
    captured: io.StringIO, esms_sim: EsmsSim
) -> None:
    """`esms_retry` and `esms_request` carry endpoint names; no URL or query in them at all."""
    settings = Settings(
        esms_api_key=esms_sim.api_key,
        esms_secret_key=esms_sim.secret_key,
        esms_rest_url=esms_sim.rest_url,
        esms_voice_url=esms_sim.voice_url,
        esms_attempt_tries=3,
        esms_backoff_base_s=0.01,
        esms_backoff_max_s=0.02,
    )
    esms_sim.configure(error_rate=1.0)
    with EsmsClient(settings) as client, pytest.raises(EsmsError):
        client.balance()
    ours = [
        json.loads(line)
        for line in captured.getvalue().splitlines()
        if json.loads(line)["event"] in ("esms_retry", "esms_request")
    ]
    assert [e["event"] for e in ours].count("esms_retry") == 2
    for event in ours:
        assert event["endpoint"] == "balance"
        assert not any("http" in str(v) and "://" in str(v) for v in event.values())
