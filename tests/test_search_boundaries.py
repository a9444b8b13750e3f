"""Search on hostile input, against a real Redis (issue 18, findings 1, 6 and 7): job ids that
hold ``:`` in the phone index, and (below) cursors that are forged, tampered with or made for
another client, and the budget of Redis work every page keeps to."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from producer.client import VoiceCallClient
from voicecall import search
from voicecall.search import Filters
from voicecall.settings import load_settings
from voicecall.store import JobStore

PHONE = "84901234567"


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


@pytest.fixture()
def client(store: JobStore) -> VoiceCallClient:
    return VoiceCallClient(load_settings(), store)


def _record(job_id: str, phone: str = PHONE, **extra: Any) -> dict[str, Any]:
    return {"kind": "record_call", "id": job_id, "phone": phone, "record_id": "r1", **extra}


# --- finding 7: the phone index holds whatever an id contains -----------------------------


def test_ids_with_colons_are_found_once_by_phone_and_hide_nobody(
    client: VoiceCallClient, store: JobStore
) -> None:
    """Ids holding ``:`` (which ids may) come back whole from a phone search and its export;
    ``attacker:victim-id`` neither hides itself nor makes ``victim-id`` appear twice."""
    ids = ["victim-id", "attacker:victim-id", "a:b:c", "x:", "trailing:84901234567"]
    for job_id in ids:
        client.enqueue(_record(job_id))
    client.enqueue(_record("other-phone:victim-id", phone="84901234568"))
    found = [job.id for job in client.iter_calls(phone=PHONE)]
    assert sorted(found) == sorted(ids)
    paged: list[str] = []
    cursor = None
    while True:
        page = search.search(store, Filters(phone=PHONE), limit=1, cursor=cursor)
        paged += [job.id for job in page.jobs]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(paged) == sorted(ids)
    out = io.StringIO()
    assert client.export(out, phone=PHONE) == len(ids)
    rows = [line.split(",", 1)[0] for line in out.getvalue().splitlines()[1:]]
    assert sorted(rows) == sorted(ids)
