"""The eSMS client: its error model, tolerant reading and retries, then the simulator over HTTP.

Sends go the worker's way, through :meth:`AsyncEsmsClient.send` with a job's typed
parameters; status lookups and the balance through the blocking :class:`EsmsClient`. The
first part answers from a script (codes the simulator never gives: 102, 140, 143, HTTP 429, a
200 HTML page), the second talks to the real simulator process (``esms_sim``) over HTTP, with
every fault it can inject.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from tests.fixtures.sim import EsmsSim, free_port
from voicecall.config.settings import Settings
from voicecall.formats.retry_after import MAX_RETRY_AFTER_S
from voicecall.job.params import OtpParams, RecordParams, TemplateParams
from voicecall.job.states import Outcome
from worker.esms import (
    AccountError,
    AsyncEsmsClient,
    ConfigurationError,
    EsmsClient,
    EsmsError,
    InsufficientBalance,
    InvalidParameter,
    NotReady,
    PermanentError,
    RateLimited,
    RetryableError,
    Submission,
    TransportError,
)
from worker.esms.errors import CODE_CLASSES, CODE_MEANINGS, error_for_code
from worker.esms.retry import MIN_TRY_S, RetryPolicy, call_with_retries
from worker.esms.transport import Sender

VN = ZoneInfo("Asia/Ho_Chi_Minh")
KEYS = {"esms_api_key": "MOCKAPIKEY123", "esms_secret_key": "MOCKSECRET456"}
Handler = Callable[[httpx.Request], httpx.Response]


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        **KEYS,
        "esms_rest_url": "https://rest.esms.vn/MainService.svc/json",
        "esms_voice_url": "https://voiceapi.esms.vn/MainService.svc/json",
        "esms_attempt_tries": 3,
        "esms_attempt_budget_s": 5.0,
        "esms_backoff_base_s": 0.01,
        "esms_backoff_max_s": 0.05,
        "esms_connect_timeout_s": 0.5,
        "esms_read_timeout_s": 0.5,
        "esms_otp_method": "post",
        "esms_brandname": "",
        "esms_sandbox": False,
        "timezone": "Asia/Ho_Chi_Minh",
    }
    values.update(overrides)
    return Settings(**values)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Script:
    """A MockTransport answering from a list of responses (the last one repeats)."""

    def __init__(self, *answers: httpx.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return answer(request) if callable(answer) else answer


def mock_client(script: Script, **overrides: object) -> tuple[EsmsClient, list[float]]:
    """A client on ``script`` whose sleeps are recorded, not slept."""
    client = EsmsClient(make_settings(**overrides), transport=httpx.MockTransport(script))
    waits: list[float] = []
    client.sleep = waits.append
    return client, waits


class ScriptSender:
    """The asyncio client's Sender answering from a Script, as ``httpx.MockTransport`` does."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def request(
        self, method: str, url: str, body: object | None, timeout: httpx.Timeout
    ) -> httpx.Response:
        return self.script(httpx.Request(method, url, json=body))

    async def aclose(self) -> None:
        return None


@dataclass
class Sending:
    """How :func:`send` reaches eSMS: the settings, and a sender (None: aiohttp, real HTTP).
    With ``waits`` set, the retries' waits are recorded there instead of slept."""

    settings: Settings
    sender: Sender | None = None
    waits: list[float] | None = field(default=None)


def mock_sending(script: Script, **overrides: object) -> tuple[Sending, list[float]]:
    """Sends answered by ``script``, their waits recorded, not slept."""
    waits: list[float] = []
    return Sending(make_settings(**overrides), ScriptSender(script), waits), waits


RECORD = RecordParams(record_id="R1")


def send(
    sending: Sending,
    call: OtpParams | RecordParams | TemplateParams = RECORD,
    *,
    request_id: str = "job-1",
    phone: str = "0901234567",
    send_date: datetime | None = None,
) -> Submission:
    """One send the worker's way (AsyncEsmsClient.send), in a loop of its own."""

    async def run() -> Submission:
        client = AsyncEsmsClient(sending.settings, sender=sending.sender)
        try:
            return await client.send(
                call, phone=phone, request_id=request_id, callback_url=None, send_date=send_date
            )
        finally:
            await client.close()

    if sending.waits is None:
        return asyncio.run(run())
    waits, slept = sending.waits, asyncio.sleep

    async def recorded(seconds: float) -> None:
        waits.append(seconds)
        await slept(0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio, "sleep", recorded)  # tenacity's wait between tries
        return asyncio.run(run())


def send_record(sending: Sending, request_id: str = "job-1", phone: str = "0901234567"):
    return send(sending, request_id=request_id, phone=phone)


def ok(body: dict[str, object], status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# --- error model ------------------------------------------------------------------------

EXPECTED_CLASS: dict[int, type[EsmsError] | None] = {
    99: PermanentError,
    100: None,
    101: ConfigurationError,
    102: AccountError,
    103: InsufficientBalance,
    104: PermanentError,
    105: NotReady,
    106: PermanentError,
    108: PermanentError,
    118: PermanentError,
    124: None,
    140: ConfigurationError,
    143: AccountError,
    160: RateLimited,
    163: PermanentError,
}


def test_every_documented_code_maps_to_exactly_one_class() -> None:
    """The digest's table: each code has one class (None = a Submission, not an error)."""
    assert set(EXPECTED_CLASS) == set(CODE_MEANINGS) == set(CODE_CLASSES)
    assert CODE_CLASSES == EXPECTED_CLASS
    for code, cls in EXPECTED_CLASS.items():
        if cls is None:
            with pytest.raises(ValueError):
                error_for_code(code)
            continue
        error = error_for_code(code, None, endpoint="record_call")
        assert type(error) is cls, code
        assert error.code == code  # type: ignore[attr-defined]
        assert CODE_MEANINGS[code] in str(error)


def test_error_tree_has_one_root_and_the_documented_branches() -> None:
    """Retry decisions need only the type: retryable, permanent, not ready, invalid."""
    for cls in (InvalidParameter, NotReady, RetryableError, PermanentError):
        assert issubclass(cls, EsmsError)
    assert issubclass(InvalidParameter, ValueError)
    for cls in (TransportError, RateLimited, InsufficientBalance):
        assert issubclass(cls, RetryableError) and not issubclass(cls, PermanentError)
    for cls in (ConfigurationError, AccountError):
        assert issubclass(cls, PermanentError) and not issubclass(cls, RetryableError)
    assert not issubclass(NotReady, RetryableError | PermanentError)


@pytest.mark.parametrize("code", sorted(c for c, k in EXPECTED_CLASS.items() if k is not None))
def test_each_error_code_raises_its_class_through_the_client(code: int) -> None:
    """A send answered with an error code raises its class with .code and .message kept."""
    script = Script(ok({"CodeResult": str(code), "ErrorMessage": f"message {code}"}))
    client, _ = mock_sending(script, esms_attempt_tries=1)
    with pytest.raises(EXPECTED_CLASS[code]) as info:  # type: ignore[arg-type]
        send_record(client)
    assert info.value.code == code  # type: ignore[union-attr]
    assert info.value.endpoint == "record_call"
    assert f"message {code}" in str(info.value)


def test_unknown_code_is_permanent_with_code_and_message_kept() -> None:
    """A code outside the table (e.g. 110) is a PermanentError carrying eSMS's own message."""
    client, _ = mock_sending(Script(ok({"CodeResult": "110", "ErrorMessage": "Invalid data"})))
    with pytest.raises(PermanentError) as info:
        send_record(client)
    assert type(info.value) is PermanentError
    assert (info.value.code, info.value.message) == (110, "Invalid data")


# --- tolerant reading ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"CodeResult": "100", "SMSID": "8eb2af6d-fb4c4814-b9cc-4c0e3ed32edf "},
        {"CodeResult": 100, "SMSID": " 8eb2af6d-fb4c4814-b9cc-4c0e3ed32edf", "CountRegenerate": 0},
        {"CodeResponse": " 100 ", "SMSID": "8eb2af6d-fb4c4814-b9cc-4c0e3ed32edf"},
    ],
)
def test_submission_reads_code_as_string_or_number_and_strips_smsid(body: dict) -> None:
    """100 under CodeResult or CodeResponse, string or number; the SMSID is stripped."""
    client, _ = mock_sending(Script(ok(body)))
    result = send_record(client)
    assert (result.code, result.duplicate) == (100, False)
    assert result.smsid == "8eb2af6d-fb4c4814-b9cc-4c0e3ed32edf"


@pytest.mark.parametrize("smsid", ["a b", "x" * 101, "id/../../x", "<script>", "ID\x00"])
def test_a_send_answer_with_a_malformed_smsid_is_accepted_with_the_smsid_unknown(
    smsid: str,
) -> None:
    """100 with an SMSID breaking the one SMSID rule: accepted (one request, no retry, so no
    second call), its SMSID read as unknown, never stored as given."""
    script = Script(ok({"CodeResult": "100", "SMSID": smsid}))
    client, waits = mock_sending(script)
    result = send_record(client)
    assert (result.code, result.smsid, result.duplicate) == (100, None, False)
    assert (len(script.requests), waits) == (1, [])


def test_otp_status_reads_totalprice_in_either_spelling() -> None:
    """Report keys are read case-blind: eSMS's "Totalprice" is the "TotalPrice" rule."""
    body = {"CodeResponse": "100", "SMSID": "abc", "SendStatus": 5, "SendSuccess": 1}
    client, _ = mock_client(Script(ok({**body, "Totalprice": "850"})))
    assert client.otp_status("abc").price_vnd == 850.0
    client, _ = mock_client(Script(ok({**body, "Totalprice": -1})))
    with pytest.raises(TransportError, match="TotalPrice"):
        client.otp_status("abc")


def test_duplicate_request_id_is_a_submission_not_an_error() -> None:
    """124 means "accepted earlier": Submission(duplicate=True), ErrorMessage kept."""
    client, _ = mock_sending(Script(ok({"CodeResult": "124", "ErrorMessage": "Duplicate"})))
    result = send_record(client)
    assert (result.code, result.smsid, result.duplicate) == (124, None, True)
    assert result.error_message == "Duplicate"


def test_documented_101_body_under_the_100_tab_is_an_error() -> None:
    """The Voice OTP page's "100" tab shows a 101 body: it is read as ConfigurationError."""
    body = {"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"}
    client, _ = mock_sending(Script(ok(body)))
    with pytest.raises(ConfigurationError, match="Authorize Failed"):
        send(client, OtpParams(content="Ma 1"), request_id="r")


def test_call_status_reads_the_documented_body_and_string_numbers() -> None:
    """voiceapi GetSendStatus: the docs' example, numbers as strings (and an empty Ivr)."""
    body = {
        "CallDuration": "13",
        "CallStatus": "ANSWERED",
        "CodeResponse": "100",
        "Ivr": "",
        "ReferenceId": "505139D7-54F8-48A9-88FA-9460A78731DD",
        "SendStatus": "5",
        "SentResult": 1,
        "Price": "550.0000",
    }
    client, _ = mock_client(Script(ok(body)))
    report = client.call_status("505139D7-54F8-48A9-88FA-9460A78731DD")
    assert (report.send_status, report.sent_result, report.duration_s) == (5, 1, 13)
    assert (report.price_vnd, report.answered, report.finished) == (550.0, True, True)


@pytest.mark.parametrize("spelling", ["NOANSWERED", "NO ANSWER", "no answer "])
def test_both_no_answer_spellings_mean_not_answered(spelling: str) -> None:
    """CallStatus NOANSWERED (status page) and NO ANSWER (callback page) both mean False."""
    body = {"CodeResponse": "100", "CallStatus": spelling, "SendStatus": 5, "SentResult": 0}
    client, _ = mock_client(Script(ok(body)))
    assert client.call_status("abc").answered is False


def test_call_status_error_body_uses_code_result() -> None:
    """The status error body carries CodeResult (not CodeResponse): still read."""
    body = {"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"}
    client, _ = mock_client(Script(ok(body)))
    with pytest.raises(ConfigurationError):
        client.call_status("abc")


def test_otp_status_and_balance_read_the_documented_bodies() -> None:
    """rest GetSendStatus and GetBalance_json: the docs' example bodies."""
    status = {
        "CodeResponse": "100",
        "SMSID": "434a124c-7818-4f45-bdf2-7f7b07fff210100",
        "SendFailed": 0,
        "SendStatus": 5,
        "SendSuccess": 1,
        "TotalPrice": 850.0000,
        "TotalReceiver": 1,
        "TotalSent": 1,
    }
    balance = {"Balance": 36693, "CodeResponse": "100", "UserID": 9999}
    client, _ = mock_client(Script(ok(status), ok(balance)))
    report = client.otp_status("434a124c-7818-4f45-bdf2-7f7b07fff210100")
    assert (report.send_success, report.send_failed, report.price_vnd) == (1, 0, 850.0)
    assert report.delivered is True and report.finished
    got = client.balance()
    assert (got.balance_vnd, got.user_id) == (36693.0, 9999)


def test_status_105_raises_not_ready_without_retrying() -> None:
    """105 on a status lookup is NotReady, raised after exactly one request."""
    script = Script(ok({"CodeResponse": "105", "SMSID": "x"}))
    client, _ = mock_client(script)
    with pytest.raises(NotReady):
        client.otp_status("x")
    assert len(script.requests) == 1


# --- failures of the request itself ---------------------------------------------------------

HTML = "<html><head><title>Runtime Error</title></head><body><h1>Server Error</h1></body></html>"


def test_html_body_with_200_is_a_transport_error_with_excerpt() -> None:
    """A 200 HTML page is no crash: TransportError naming the status, with a short excerpt."""
    script = Script(httpx.Response(200, text=HTML))
    client, _ = mock_sending(script)
    with pytest.raises(TransportError) as info:
        send_record(client)
    assert info.value.reason == "bad_body"
    assert "HTTP 200" in str(info.value) and "Runtime Error" in str(info.value)
    assert len(str(info.value)) < 300
    assert len(script.requests) == 3  # retried: tries=3


def test_html_4xx_is_a_configuration_error_not_retried() -> None:
    """A 404 HTML page means a wrong URL: ConfigurationError after one request."""
    script = Script(httpx.Response(404, text=HTML))
    client, _ = mock_client(script)
    with pytest.raises(ConfigurationError, match="HTTP 404"):
        client.balance()
    assert len(script.requests) == 1


def test_error_excerpt_never_holds_credentials_or_phones() -> None:
    """An error page echoing the request is scrubbed before it reaches the message."""
    echo = f"<p>bad: ?ApiKey={KEYS['esms_api_key']}&Phone=0901234567 {KEYS['esms_secret_key']}</p>"
    client, _ = mock_sending(Script(httpx.Response(503, text=echo)))
    with pytest.raises(TransportError) as info:
        send_record(client)
    text = str(info.value)
    assert KEYS["esms_api_key"] not in text and KEYS["esms_secret_key"] not in text
    assert "0901234567" not in text


def test_500_then_100_is_retried_to_success_with_a_retry_event() -> None:
    """A 5xx is retried inside the attempt; each retry is one `esms_retry` event, no URL."""
    script = Script(httpx.Response(500, text=HTML), ok({"CodeResult": "100", "SMSID": "s1"}))
    client, waits = mock_sending(script)
    before = sample(
        "voicecall_esms_retries_in_attempt_total", endpoint="record_call", reason="http_500"
    )
    with capture_logs() as logs:
        assert send_record(client).smsid == "s1"
    retries = [e for e in logs if e["event"] == "esms_retry"]
    assert retries == [
        {
            "event": "esms_retry",
            "endpoint": "record_call",
            "attempt": 1,
            "reason": "http_500",
            "wait_s": round(waits[0], 3),
            "log_level": "info",
        }
    ]
    after = sample(
        "voicecall_esms_retries_in_attempt_total", endpoint="record_call", reason="http_500"
    )
    assert after - before == 1


def test_429_waits_exactly_retry_after() -> None:
    """HTTP 429 with Retry-After waits that long, then tries again."""
    script = Script(
        httpx.Response(429, headers={"Retry-After": "1"}),
        ok({"CodeResult": "100", "SMSID": "s"}),
    )
    client, waits = mock_sending(script)
    assert send_record(client).smsid == "s"
    assert waits == [1.0]


@pytest.mark.parametrize(
    "value",
    [
        "²",
        "٣".encode().decode("latin-1"),  # Arabic-Indic three, as UTF-8 on the wire
        "１".encode().decode("latin-1"),  # full-width one
        "0.25",  # delta-seconds are whole seconds
        "-1",
        "NaN",
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # OverflowError in parsedate
    ],
)
def test_an_unreadable_retry_after_from_esms_falls_back_to_backoff(value: str) -> None:
    """eSMS's Retry-After of Unicode digits, fractions, signs, NaN or an impossible date is no
    hint: the backoff decides the wait, and nothing raises but the client's own errors."""
    script = Script(
        httpx.Response(429, headers=[(b"Retry-After", value.encode("latin-1"))]),
        ok({"CodeResult": "100", "SMSID": "s"}),
    )
    client, waits = mock_sending(script)
    assert send_record(client).smsid == "s"
    assert len(waits) == 1 and 0 <= waits[0] <= 0.05  # within ESMS_BACKOFF_MAX_S


@pytest.mark.parametrize("value", ["9" * 5000, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_retry_after_from_esms_is_clamped_to_a_day(value: str) -> None:
    """A Retry-After of 5,000 digits or the year 9999 is clamped to MAX_RETRY_AFTER_S (a
    day): past the budget, so RateLimited goes to Dramatiq at once with that clamped hint."""
    script = Script(httpx.Response(429, headers={"Retry-After": value}))
    client, waits = mock_sending(script, esms_attempt_budget_s=5)
    with pytest.raises(RateLimited) as info:
        send_record(client)
    assert info.value.retry_after_s == MAX_RETRY_AFTER_S
    assert waits == [] and len(script.requests) == 1


def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    """A Retry-After longer than the budget left re-raises RateLimited for Dramatiq."""
    script = Script(httpx.Response(429, headers={"Retry-After": "120"}))
    client, waits = mock_sending(script, esms_attempt_budget_s=5)
    with pytest.raises(RateLimited) as info:
        send_record(client)
    assert info.value.retry_after_s == 120
    assert waits == [] and len(script.requests) == 1


def test_160_is_retried_then_raised_as_rate_limited() -> None:
    """eSMS 160 (TPS) is retried with backoff; when tries run out, RateLimited(code=160)."""
    script = Script(ok({"CodeResult": "160", "ErrorMessage": "TPS"}))
    client, waits = mock_sending(script, esms_attempt_tries=4)
    with pytest.raises(RateLimited) as info:
        send_record(client)
    assert info.value.code == 160 and info.value.retry_after_s is None
    assert len(script.requests) == 4 and len(waits) == 3


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    """Waits are drawn from [0, min(max, base·2^n)]: full jitter, capped by ESMS_BACKOFF_MAX_S."""
    script = Script(httpx.Response(502))
    client, waits = mock_sending(
        script, esms_attempt_tries=8, esms_backoff_base_s=0.1, esms_backoff_max_s=0.3
    )
    with pytest.raises(TransportError):
        send_record(client)
    assert len(waits) == 7
    for n, wait in enumerate(waits):
        assert 0 <= wait <= min(0.3, 0.1 * 2**n)


@pytest.mark.parametrize("answer", [ok({"CodeResult": "104"}), ok({"CodeResult": "103"})])
def test_permanent_and_balance_errors_are_not_retried(answer: httpx.Response) -> None:
    """Permanent codes and 103 go straight back to the caller: one request, no wait."""
    script = Script(answer)
    client, waits = mock_sending(script)
    with pytest.raises(EsmsError):
        send_record(client)
    assert len(script.requests) == 1 and waits == []


def test_budget_bounds_the_attempt_including_waits() -> None:
    """No try starts once too little of the budget is left, whatever the tries left."""
    now = [0.0]
    starts: list[float] = []
    left: list[float] = []

    def failing(left_s: float) -> None:
        starts.append(now[0])
        left.append(left_s)
        now[0] += 1.0  # each try takes 1 s
        raise TransportError("boom", reason="timeout")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = RetryPolicy(tries=10, budget_s=3.5, base_s=0.001, max_s=0.001)
    with pytest.raises(TransportError):
        call_with_retries(failing, endpoint="x", policy=policy, sleep=sleep, clock=lambda: now[0])
    assert len(starts) == 4  # at about 0, 1, 2 and 3 s; one at 4 s would be past 3.5 s
    assert left[0] == 3.5 and all(value >= MIN_TRY_S for value in left)
    assert all(
        3.5 - start == pytest.approx(value) for start, value in zip(starts, left, strict=True)
    )


def test_connection_refused_is_a_connect_error() -> None:
    """Nothing listening: TransportError(reason=connect_error) after the tries, no crash."""
    url = f"http://127.0.0.1:{free_port()}/MainService.svc/json"
    with EsmsClient(make_settings(esms_rest_url=url, esms_voice_url=url)) as client:
        before = sample("voicecall_esms_requests_total", endpoint="balance", code="connect_error")
        with pytest.raises(TransportError) as info:
            client.balance()
    assert info.value.reason == "connect_error"
    after = sample("voicecall_esms_requests_total", endpoint="balance", code="connect_error")
    assert after - before == 3


def test_client_refuses_to_start_without_credentials() -> None:
    """Missing ApiKey/SecretKey is a ConfigurationError at construction, not a 101 later."""
    with pytest.raises(ConfigurationError):
        EsmsClient(make_settings(esms_api_key=""))


# --- against the simulator, over real HTTP ---------------------------------------------------


def sim_settings(esms_sim: EsmsSim, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "esms_api_key": esms_sim.api_key,
        "esms_secret_key": esms_sim.secret_key,
        "esms_rest_url": esms_sim.rest_url,
        "esms_voice_url": esms_sim.voice_url,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def sim_client(esms_sim: EsmsSim) -> Iterator[EsmsClient]:
    """The blocking client (status lookups, balance) on the simulator."""
    with EsmsClient(sim_settings(esms_sim)) as client:
        yield client


@pytest.fixture
def sim_sending(esms_sim: EsmsSim) -> Sending:
    """Sends to the simulator the worker's way, over real HTTP (aiohttp)."""
    return Sending(sim_settings(esms_sim))


def test_sim_every_send_endpoint_is_accepted(sim_sending: Sending, esms_sim: EsmsSim) -> None:
    """OTP (POST and GET), record and template sends get 100 and a stripped SMSID."""
    otp_get = Sending(sim_settings(esms_sim, esms_otp_method="get"))
    record = RecordParams(
        record_id="R1",
        number_forward="0912345678",
        ivr=1,
        max_retry=1,
        wait_retry=30,
        max_repeat=2,
        time_wait_to_ivr=5,
    )
    template = TemplateParams(
        template_id="T1", variables=["Trung", "20000"], voice="ngoclam", speed=2
    )
    results = [
        send(sim_sending, OtpParams(content="Ma 1"), phone="+84 90 123 4567", request_id="otp-p"),
        send(otp_get, OtpParams(content="Ma 2"), request_id="otp-g"),
        send(sim_sending, record, phone="84901234567", request_id="rec"),
        send(sim_sending, template, request_id="tpl"),
    ]
    for result in results:
        assert (result.code, result.duplicate) == (100, False)
        assert result.smsid and result.smsid == result.smsid.strip()
    ledger = {call["request_id"]: call for call in esms_sim.calls()}
    assert set(ledger) == {"otp-p", "otp-g", "rec", "tpl"}
    assert ledger["rec"]["params"]["RequestID"] == "rec"
    assert ledger["tpl"]["params"]["VariableListStr"] == "Trung||20000"
    assert {call["phone"] for call in ledger.values()} == {"0901234567"}


def test_sim_repeat_request_id_is_duplicate(sim_sending: Sending, esms_sim: EsmsSim) -> None:
    """The same RequestId twice: the second answer is 124 → duplicate, and one call exists."""
    first = send_record(sim_sending, "job-dup")
    second = send_record(sim_sending, "job-dup")
    assert (first.duplicate, second.duplicate, second.code) == (False, True, 124)
    assert len(esms_sim.calls(request_id="job-dup")) == 1


def test_sim_both_send_date_formats(sim_sending: Sending, esms_sim: EsmsSim) -> None:
    """The simulator reads OTP and voice SendDate in their own formats as the same instant."""
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    send(sim_sending, OtpParams(content="Ma 1"), request_id="d-otp", send_date=when)
    send(sim_sending, RecordParams(record_id="R"), request_id="d-rec", send_date=when)
    ledger = {call["request_id"]: call for call in esms_sim.calls()}
    local = when.astimezone(VN)
    assert ledger["d-otp"]["params"]["SendDate"] == local.strftime("%Y-%m-%d %H:%M:%S")
    assert ledger["d-rec"]["params"]["SendDate"] == local.strftime("%Y/%m/%d %H:%M:%S")
    for key in ("d-otp", "d-rec"):
        assert datetime.fromisoformat(ledger[key]["send_date"]) == when


@pytest.mark.parametrize(
    ("knobs", "call", "expected", "code"),
    [
        ({}, {"phone": "0900000099"}, PermanentError, 99),
        ({"recordings": ["R-known"]}, {"record_id": "R-unknown"}, PermanentError, 106),
        ({"balance": 0}, {}, InsufficientBalance, 103),
    ],
)
def test_sim_error_codes_raise_their_class(
    sim_sending: Sending,
    esms_sim: EsmsSim,
    knobs: dict,
    call: dict,
    expected: type[EsmsError],
    code: int,
) -> None:
    """Blocked phone (99), unknown recording (106), no balance (103): one request, no call."""
    esms_sim.configure(**knobs)
    record = RecordParams(record_id=call.get("record_id", "R1"))
    with pytest.raises(expected) as info:
        send(sim_sending, record, phone=call.get("phone", "0901234567"), request_id="e1")
    assert info.value.code == code
    assert esms_sim.calls() == []
    assert sum(esms_sim.stats()["results"]["voice.MakeCallRecord_V2"].values()) == 1


def test_sim_unknown_template_is_104(sim_sending: Sending, esms_sim: EsmsSim) -> None:
    """An unknown TemplateId: PermanentError 104 with eSMS's message."""
    esms_sim.configure(templates=["T-known"])
    with pytest.raises(PermanentError) as info:
        send(sim_sending, TemplateParams(template_id="T-x"), request_id="t")
    assert info.value.code == 104 and "Template not found" in info.value.message


def test_sim_wrong_keys_are_a_configuration_error(esms_sim: EsmsSim) -> None:
    """Wrong SecretKey: 101 → ConfigurationError on sends, status and balance alike."""
    settings = sim_settings(esms_sim, esms_secret_key="wrong-secret")
    with pytest.raises(ConfigurationError) as info:
        send_record(Sending(settings))
    assert info.value.code == 101
    with EsmsClient(settings) as client:
        with pytest.raises(ConfigurationError):
            client.call_status("abc")
        with pytest.raises(ConfigurationError):
            client.otp_status("abc")
        with pytest.raises(ConfigurationError):
            client.balance()


def test_sim_call_status_105_then_report(
    sim_client: EsmsClient, sim_sending: Sending, esms_sim: EsmsSim
) -> None:
    """Right after a send the status is 105 (NotReady); once finished, a full report."""
    smsid = send_record(sim_sending, "st-1").smsid
    assert smsid
    with pytest.raises(NotReady):
        sim_client.call_status(smsid)
    esms_sim.wait_finished(smsid)
    time.sleep(0.05)
    report = sim_client.call_status(smsid)
    assert report.smsid == smsid and report.finished
    assert (report.sent_result, report.answered) == (1, True)
    assert report.duration_s is not None and report.duration_s > 0


def test_sim_unanswered_call_reads_not_answered(
    sim_client: EsmsClient, sim_sending: Sending, esms_sim: EsmsSim
) -> None:
    """A number ending in 1 rings unanswered: SentResult 1, NOANSWERED, not_answered."""
    smsid = send_record(sim_sending, "st-2", phone="0901234561").smsid
    assert smsid
    esms_sim.wait_finished(smsid)
    report = sim_client.call_status(smsid)
    assert (report.finished, report.sent_result, report.answered) == (True, 1, False)
    assert report.outcome is Outcome.NOT_ANSWERED


def test_sim_failed_call_reads_undelivered(
    sim_client: EsmsClient, sim_sending: Sending, esms_sim: EsmsSim
) -> None:
    """A number ending in 2 is not delivered by the carrier: SentResult 0 → undelivered."""
    smsid = send_record(sim_sending, "st-3", phone="0901234562").smsid
    assert smsid
    esms_sim.wait_finished(smsid)
    report = sim_client.call_status(smsid)
    assert (report.sent_result, report.call_status) == (0, None)
    assert report.outcome is Outcome.UNDELIVERED


def test_sim_otp_status_105_then_delivered(
    sim_client: EsmsClient, sim_sending: Sending, esms_sim: EsmsSim
) -> None:
    """Voice OTP status by RefId: 105 at first, then SendSuccess 1 and the price."""
    smsid = send(sim_sending, OtpParams(content="Ma 1"), request_id="o").smsid
    assert smsid
    with pytest.raises(NotReady):
        sim_client.otp_status(smsid)
    esms_sim.wait_finished(smsid)
    report = sim_client.otp_status(smsid)
    assert (report.finished, report.delivered, report.price_vnd) == (True, True, 850.0)


def test_sim_balance(sim_client: EsmsClient, sim_sending: Sending, esms_sim: EsmsSim) -> None:
    """GetBalance_json reads the balance, and it drops by the price of an accepted call."""
    start = sim_client.balance()
    send_record(sim_sending, "bal")
    assert start.user_id == 9999
    assert sim_client.balance().balance_vnd == start.balance_vnd - 850


def test_sim_500_pages_are_retried_then_transport_error(
    sim_sending: Sending, esms_sim: EsmsSim
) -> None:
    """Always HTTP 500 (IIS HTML): each try counted, then TransportError with an excerpt."""
    esms_sim.configure(error_rate=1.0)
    before = sample("voicecall_esms_requests_total", endpoint="record_call", code="http_500")
    with pytest.raises(TransportError) as info:
        send_record(sim_sending)
    assert info.value.http_status == 500 and info.value.reason == "http_500"
    assert "HTTP 500" in str(info.value) and "Internal server error" in str(info.value)
    assert esms_sim.stats()["faults"]["http_500"] == 3
    after = sample("voicecall_esms_requests_total", endpoint="record_call", code="http_500")
    assert after - before == 3
    assert esms_sim.calls() == []


def test_sim_intermittent_500_recovers(esms_sim: EsmsSim) -> None:
    """Half the requests fail with 500: retries inside the attempt still get every call placed."""
    esms_sim.configure(error_rate=0.5)
    sending = Sending(sim_settings(esms_sim, esms_attempt_tries=10))
    results = [send_record(sending, f"flaky-{i}") for i in range(6)]
    assert all(r.code == 100 for r in results)
    assert esms_sim.stats()["faults"]["http_500"] > 0
    assert len(esms_sim.calls()) == 6


def test_sim_timeouts_are_retried_within_the_budget(esms_sim: EsmsSim) -> None:
    """A hanging server: read timeouts, retried, then TransportError(timeout) within budget."""
    esms_sim.configure(timeout_rate=1.0, hang_s=3.0)
    sending = Sending(sim_settings(esms_sim, esms_read_timeout_s=0.3, esms_attempt_tries=2))
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        send_record(sending)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 1.5
    assert esms_sim.stats()["faults"]["timeout"] == 2


def test_sim_budget_cuts_a_slow_try_short(esms_sim: EsmsSim) -> None:
    """A try never outlives the attempt's budget, whatever the read timeout."""
    esms_sim.configure(timeout_rate=1.0, hang_s=3.0)
    sending = Sending(sim_settings(esms_sim, esms_read_timeout_s=10, esms_attempt_budget_s=0.6))
    started = time.monotonic()
    with pytest.raises(TransportError):
        send_record(sending)
    assert time.monotonic() - started < 1.2


def test_sim_tps_limit_160_is_retried_until_accepted(esms_sim: EsmsSim) -> None:
    """Over the TPS limit eSMS answers 160; backoff inside the attempt gets every send through."""
    esms_sim.configure(tps_limit=2)
    # waits of up to 0.3, 0.6, then 1 s: nine of them outlast the 1 s TPS window for sure
    sending = Sending(
        sim_settings(
            esms_sim,
            esms_attempt_tries=10,
            esms_attempt_budget_s=8,
            esms_backoff_base_s=0.3,
            esms_backoff_max_s=1.0,
        )
    )
    before = sample("voicecall_esms_retries_in_attempt_total", endpoint="record_call", reason="160")
    with capture_logs() as logs:
        results = [send_record(sending, f"tps-{i}") for i in range(4)]
    assert all(r.code == 100 for r in results)
    assert esms_sim.stats()["faults"]["tps_rejected"] > 0
    retries = [e for e in logs if e["event"] == "esms_retry"]
    assert retries and all(e["reason"] == "160" for e in retries)
    after = sample("voicecall_esms_retries_in_attempt_total", endpoint="record_call", reason="160")
    assert after - before == len(retries) == esms_sim.stats()["faults"]["tps_rejected"]


@pytest.mark.parametrize("drop_mode", ["reset", "502"])
def test_sim_lost_answer_then_retry_is_duplicate_with_one_call(
    sim_sending: Sending, esms_sim: EsmsSim, drop_mode: str
) -> None:
    """eSMS accepts but the answer is lost: the retried send gets 124, and ONE call exists."""
    esms_sim.configure(accept_then_drop_rate=1.0, drop_mode=drop_mode)
    result = send_record(sim_sending, f"drop-{drop_mode}")
    assert (result.code, result.duplicate) == (124, True)
    calls = esms_sim.calls(request_id=f"drop-{drop_mode}")
    assert len(calls) == 1
    assert esms_sim.stats()["faults"]["accept_then_drop"] == 1


def test_sim_lost_otp_answer_is_duplicate_too(sim_sending: Sending, esms_sim: EsmsSim) -> None:
    """The same holds for Voice OTP over POST: one call, Submission(duplicate=True)."""
    esms_sim.configure(accept_then_drop_rate=1.0)
    result = send(sim_sending, OtpParams(content="Ma 1"), request_id="otp-d")
    assert result.duplicate
    assert len(esms_sim.calls(request_id="otp-d")) == 1


def test_public_api_is_pinned() -> None:
    """What the worker imports from worker.esms is a deliberate list."""
    import worker.esms

    assert sorted(worker.esms.__all__) == [
        "AccountError", "AsyncEsmsClient", "Balance", "ConfigurationError", "EsmsClient",
        "EsmsError", "InsufficientBalance", "InvalidParameter", "NotReady", "PermanentError",
        "RateLimited", "Report", "RetryableError", "Speed", "Submission",
        "TransportError", "Voice",
    ]  # fmt: skip
