"""worker.host_shares: a receiver host's bounded share of the webhook slots, with the engine's
real slots on a real pool (a BoundedSemaphore), one asyncio loop, no network."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from worker.engine import Slot
from worker.host_shares import HostShares, Passable

POOL_SIZE = 6


class Pool:
    """The engine's pool of webhook slots: a BoundedSemaphore, taken without waiting."""

    def __init__(self) -> None:
        self.semaphore = threading.BoundedSemaphore(POOL_SIZE)

    def take(self) -> Slot:
        assert self.semaphore.acquire(blocking=False), "the pool is empty"
        return Slot(self.semaphore, "voicecall-webhooks")

    @property
    def free(self) -> int:
        return self.semaphore._value  # type: ignore[attr-defined]


def run(test: Callable[[Pool], Awaitable[None]]) -> Pool:
    pool = Pool()
    asyncio.run(test(pool))
    return pool


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def one_running_one_waiting(
    pool: Pool, shares: HostShares
) -> tuple[Slot, asyncio.Task[Passable | None]]:
    """job-1 holds host a's only place; job-2 waits in its line."""
    held = pool.take()
    assert await shares.enter("a.example", "job-1", held) is held
    waiting = asyncio.create_task(shares.enter("a.example", "job-2", pool.take()))
    await settle()
    assert not waiting.done()
    return held, waiting


def test_under_its_share_a_delivery_keeps_the_slot_it_came_with() -> None:
    """Up to the share, enter() gives back the very slot: nothing waits, nothing is released."""

    async def scenario(pool: Pool) -> None:
        shares = HostShares(share=2, waiting_limit=10)
        a, b = pool.take(), pool.take()
        assert await shares.enter("a.example", "job-1", a) is a
        assert await shares.enter("a.example", "job-2", b) is b
        assert (shares.running("a.example"), pool.free) == (2, POOL_SIZE - 2)
        shares.leave("a.example", "job-1", a)
        shares.leave("a.example", "job-2", b)
        assert (shares.running("a.example"), pool.free) == (0, POOL_SIZE)

    assert run(scenario).free == POOL_SIZE


def test_over_its_share_a_delivery_waits_without_a_slot_and_gets_one_passed_on() -> None:
    """The third delivery to a host with a share of 2 gives its slot back and waits; when one
    of the two ends, its slot passes to the waiter (FIFO) without going back to the pool."""

    async def scenario(pool: Pool) -> None:
        shares = HostShares(share=2, waiting_limit=10)
        first, second = pool.take(), pool.take()
        await shares.enter("a.example", "job-1", first)
        await shares.enter("a.example", "job-2", second)
        third = asyncio.create_task(shares.enter("a.example", "job-3", pool.take()))
        fourth = asyncio.create_task(shares.enter("a.example", "job-4", pool.take()))
        await settle()
        assert not third.done() and not fourth.done()
        assert (shares.waiting, pool.free) == (2, POOL_SIZE - 2)  # waiting holds no slot

        shares.leave("a.example", "job-1", first)
        await settle()
        assert third.done() and not fourth.done()
        passed = third.result()
        assert passed is not None and passed is not first
        assert (shares.running("a.example"), pool.free) == (2, POOL_SIZE - 2)

        shares.leave("a.example", "job-2", second)
        shares.leave("a.example", "job-3", passed)
        await settle()
        last = fourth.result()
        assert last is not None
        shares.leave("a.example", "job-4", last)
        assert (shares.running("a.example"), shares.waiting) == (0, 0)

    assert run(scenario).free == POOL_SIZE


def test_a_host_at_its_share_does_not_hold_back_another_host() -> None:
    """Host a has its share in use and a line; host b's delivery goes at once."""

    async def scenario(pool: Pool) -> None:
        shares = HostShares(share=1, waiting_limit=10)
        held, waiting = await one_running_one_waiting(pool, shares)
        other = pool.take()
        assert await shares.enter("b.example", "job-3", other) is other
        shares.leave("b.example", "job-3", other)
        shares.leave("a.example", "job-1", held)
        passed = await waiting
        assert passed is not None
        shares.leave("a.example", "job-2", passed)

    assert run(scenario).free == POOL_SIZE


def test_a_full_line_or_a_job_already_in_hand_is_deferred_and_keeps_its_slot() -> None:
    """Past waiting_limit, or for a job id already running or waiting here: None, and the
    slot is left to the caller (the engine gives it back)."""

    async def scenario(pool: Pool) -> None:
        shares = HostShares(share=1, waiting_limit=1)
        held, waiting = await one_running_one_waiting(pool, shares)
        for key in ("job-3", "job-1", "job-2"):
            slot = pool.take()
            assert await shares.enter("a.example", key, slot) is None
            slot.release()  # as the engine does
        shares.leave("a.example", "job-1", held)
        passed = await waiting
        assert passed is not None
        shares.leave("a.example", "job-2", passed)

    assert run(scenario).free == POOL_SIZE


def test_closing_ends_every_wait_and_refuses_new_deliveries() -> None:
    """close() (the engine stops): waiters get None at once, new deliveries get None, and the
    deliveries under way still give their slots back."""

    async def scenario(pool: Pool) -> None:
        shares = HostShares(share=1, waiting_limit=10)
        held, waiting = await one_running_one_waiting(pool, shares)
        shares.close()
        assert await waiting is None
        late = pool.take()
        assert await shares.enter("b.example", "job-3", late) is None
        late.release()
        shares.leave("a.example", "job-1", held)

    assert run(scenario).free == POOL_SIZE


@pytest.mark.parametrize("turn_came_first", [False, True])
def test_a_cancelled_waiter_leaves_the_line_and_loses_no_slot(turn_came_first: bool) -> None:
    """A waiting delivery cancelled (shutdown's drain) leaves its line; one cancelled just as
    its turn came passes the slot on to the next waiter. No slot is lost or doubled."""

    async def scenario(pool: Pool) -> None:
        shares = HostShares(share=1, waiting_limit=10)
        held, doomed = await one_running_one_waiting(pool, shares)
        after = asyncio.create_task(shares.enter("a.example", "job-3", pool.take()))
        await settle()
        if turn_came_first:
            shares.leave("a.example", "job-1", held)  # job-2's turn is set, not yet run
        doomed.cancel()
        await settle()
        assert doomed.cancelled()
        if not turn_came_first:
            assert not after.done()
            shares.leave("a.example", "job-1", held)
        passed = await after
        assert passed is not None
        shares.leave("a.example", "job-3", passed)
        assert (shares.running("a.example"), shares.waiting) == (0, 0)

    assert run(scenario).free == POOL_SIZE


def test_a_slot_handed_over_is_released_once_by_its_new_holder() -> None:
    """Slot.hand_over: the old handle releases nothing, the new one releases the place once."""
    pool = Pool()
    slot = pool.take()
    passed = slot.hand_over()
    slot.release()
    assert pool.free == POOL_SIZE - 1
    passed.release()
    passed.release()
    assert pool.free == POOL_SIZE
    with pytest.raises(RuntimeError):
        slot.hand_over()
