"""verify_webhook (voicecall.client.webhooks) against deliveries signed as the worker signs them
(voicecall.webhook_signing): a genuine one gives its job; forged, altered, old, early and
malformed ones are refused with InvalidWebhook, whatever the headers hold. The README's FastAPI
receiver (examples/webhook_receiver.py) runs under uvicorn and answers accordingly.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.clients import job_json
from tests.fixtures.redis import free_port
from voicecall.client import InvalidWebhook, WebhookEvent, verify_webhook
from voicecall.webhooks.signing import SECRET_RULE, WebhookSecret, signature_headers

ROOT = Path(__file__).resolve().parents[1]
SECRET = WebhookSecret.generate()
BODY = job_json("job-7", state="completed", outcome="answered", finished_at=1893456042.5)


def signed(
    body: bytes = BODY, *, at: float | None = None, secret: WebhookSecret = SECRET
) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    return signature_headers(secret, "msg_abc", stamp, body)


def test_a_genuine_delivery_gives_its_event() -> None:
    """Headers and body as the worker signs them: the event's id, time and job (a JobView)."""
    headers = signed()
    event = verify_webhook(headers, BODY, SECRET.serialize())
    assert isinstance(event, WebhookEvent)
    assert (event.id, event.job.id, event.job.state, event.job.outcome) == (
        "msg_abc", "job-7", "completed", "answered",
    )  # fmt: skip
    assert abs(event.timestamp.timestamp() - int(headers["webhook-timestamp"])) < 1
    capitalised = {name.title(): value for name, value in headers.items()}
    assert verify_webhook(capitalised, BODY.decode(), SECRET).job.id == "job-7"


def _with(**changed: str) -> dict[str, str]:
    return {**signed(), **changed}


# Each case is made when the test runs (a time made at collection would drift toward now).
REFUSED: dict[str, Callable[[], tuple[dict[str, str], bytes]]] = {
    "another secret": lambda: (signed(secret=WebhookSecret.generate()), BODY),
    "altered body": lambda: (signed(), BODY.replace(b"completed", b"cancelled")),
    "six minutes old": lambda: (signed(at=time.time() - 360), BODY),
    "six minutes ahead": lambda: (signed(at=time.time() + 360), BODY),
    "another event's id": lambda: (_with(**{"webhook-id": "msg_other"}), BODY),
    "v2 only": lambda: (
        _with(**{"webhook-signature": "v2," + signed()["webhook-signature"][3:]}),
        BODY,
    ),
    "empty v1": lambda: (_with(**{"webhook-signature": "v1,"}), BODY),
    "no comma": lambda: (_with(**{"webhook-signature": "no comma"}), BODY),
    "not base64": lambda: (_with(**{"webhook-signature": "v1,not base64!"}), BODY),
    "two commas": lambda: (_with(**{"webhook-signature": "v1,a,b"}), BODY),
    "NaN time": lambda: (_with(**{"webhook-timestamp": "NaN"}), BODY),
    "huge time": lambda: (_with(**{"webhook-timestamp": "1e400"}), BODY),
    "negative time": lambda: (_with(**{"webhook-timestamp": "-1"}), BODY),
    "empty time": lambda: (_with(**{"webhook-timestamp": ""}), BODY),
    "no signature": lambda: ({k: v for k, v in signed().items() if k != "webhook-signature"}, BODY),
    "no headers": lambda: ({}, BODY),
    "signed, not UTF-8": lambda: (signed(b"\xff\xfe not utf-8"), b"\xff\xfe not utf-8"),
    "signed, not a job": lambda: (signed(b'{"id": "job-7"}'), b'{"id": "job-7"}'),
    "signed, a list": lambda: (signed(b"[]"), b"[]"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_forged_altered_old_or_malformed_deliveries_are_refused(case: str) -> None:
    """Each is InvalidWebhook (a ValueError), never another exception, and the message never holds the secret."""
    headers, body = REFUSED[case]()
    with pytest.raises(InvalidWebhook) as caught:
        verify_webhook(headers, body, SECRET.serialize())
    assert isinstance(caught.value, ValueError)
    assert base64.b64encode(SECRET.key).decode() not in str(caught.value)


def test_a_malformed_secret_is_refused_with_its_rule() -> None:
    """A secret that is no whsec_ value is a ValueError stating the rule, not a verification failure."""
    with pytest.raises(ValueError, match="whsec_") as caught:
        verify_webhook(signed(), BODY, "not-a-secret")
    assert SECRET_RULE in str(caught.value)
    assert not isinstance(caught.value, InvalidWebhook)


@pytest.fixture()
def receiver_url(tmp_path: Path) -> Iterator[str]:
    """examples/webhook_receiver.py served by uvicorn on a free port."""
    port = free_port()
    log = (tmp_path / "receiver.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "examples"),
         "--port", str(port), "webhook_receiver:app"],
        env={**os.environ, "WEBHOOK_SECRET": SECRET.serialize()},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/hooks/voicecall"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_readmes_receiver_accepts_a_genuine_delivery_and_refuses_a_forged_or_old_one(
    receiver_url: str,
) -> None:
    """The FastAPI example answers 200 to a signed delivery, 400 naming the reason to a forged or a six-minute-old one."""
    genuine = httpx.post(receiver_url, content=BODY, headers=signed())
    assert genuine.status_code == 200, genuine.text
    forged = httpx.post(receiver_url, content=BODY, headers=signed(secret=WebhookSecret.generate()))
    old = httpx.post(receiver_url, content=BODY, headers=signed(at=time.time() - 360))
    assert (forged.status_code, old.status_code) == (400, 400)
    assert "signature" in forged.json()["detail"] and "too old" in old.json()["detail"]
