"""Campaigns: each one's number (given on its first job) and places reserved in it, and the
counters the lifecycle steps keep for it (lib.lua ``campaign_add``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis
import redis.asyncio

from voicecall.job import keys
from voicecall.job.states import Outcome, State
from voicecall.store.scripts import plain_source, registered

# The counters each campaign keeps (fields "{cid}:{name}" of keys.CAMPAIGN_STATS).
CAMPAIGN_FIGURES: tuple[str, ...] = (
    "total",
    *(s.value for s in State),
    *(f"outcome:{o.value}" for o in Outcome),
    "duration_s",
    "price_vnd",
    "first_sent_at",
    "last_sent_at",
)

RESERVE_CAMPAIGN = plain_source("reserve_campaign")


def reserve_keys() -> dict[str, str]:
    """reserve_campaign.lua's key slots, by name."""
    return {"campaigns": keys.CAMPAIGNS, "names": keys.CAMPAIGN_NAMES, "seq": keys.CAMPAIGN_SEQ}


class Campaigns:
    """Campaign numbers, places and figures, for the blocking store."""

    _redis: redis.Redis

    def campaign_number(self, name: str) -> tuple[int, int] | None:
        """(cid, places given so far) of the campaign ``name``, or None if unknown."""
        cid = cast(str | None, self._redis.hget(keys.CAMPAIGNS, name))
        if cid is None:
            return None
        last = cast(str | None, self._redis.hget(keys.CAMPAIGN_SEQ, cid))
        return int(cid), int(last or 0)

    def campaign_names(self) -> list[tuple[int, str]]:
        """(cid, name) of every campaign, newest first."""
        names = cast(dict[str, str], self._redis.hgetall(keys.CAMPAIGN_NAMES))
        return sorted(((int(cid), name) for cid, name in names.items()), reverse=True)

    def campaign_figures(self, cid: int) -> dict[str, float]:
        return self.campaign_figures_many([cid])[0]

    def campaign_figures_many(self, cids: Sequence[int]) -> list[dict[str, float]]:
        """Each campaign's counters (lib.lua: campaign_add), by figure name."""
        rows = self._counters([f"{cid}:" for cid in cids], CAMPAIGN_FIGURES)
        return [{name: float(v) for name, v in row.items()} for row in rows]

    def campaign_hours(
        self, cid: int, hours: Sequence[int], names: Sequence[str]
    ) -> list[dict[str, int]]:
        """The campaign's activity in each of ``hours`` (epoch hours; lib.lua
        ``campaign_hour``): each of ``names`` (``sent``, a final state, ``outcome:NAME``)
        with its count, in one round trip."""
        rows = self._counters([f"{cid}:h{hour}:" for hour in hours], names)
        return [{name: int(v) for name, v in row.items()} for row in rows]

    def _counters(self, prefixes: Sequence[str], names: Sequence[str]) -> list[dict[str, str]]:
        """For each prefix, the counters ``{prefix}{name}`` of keys.CAMPAIGN_STATS that are
        set, by name, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for prefix in prefixes:
            pipe.hmget(keys.CAMPAIGN_STATS, [prefix + name for name in names])
        return [
            {name: v for name, v in zip(names, values, strict=True) if v}
            for values in pipe.execute()
        ]

    def reserve_campaign(self, name: str, count: int = 1) -> tuple[int, int]:
        """(the campaign's number, the first of ``count`` places reserved in it), creating the
        campaign on its first job. Places are never given twice (a gap is harmless)."""
        reserve = registered(self, self._redis, RESERVE_CAMPAIGN)
        cid, first = reserve(keys=list(reserve_keys().values()), args=[name, count])
        return int(cid), int(first)


class AsyncCampaigns:
    """Places in a campaign, for the asyncio store (intake)."""

    _redis: redis.asyncio.Redis

    async def reserve_campaign(self, name: str, count: int = 1) -> tuple[int, int]:
        """See :meth:`JobStore.reserve_campaign`."""
        reserve = registered(self, self._redis, RESERVE_CAMPAIGN)
        cid, first = await reserve(keys=list(reserve_keys().values()), args=[name, count])
        return int(cid), int(first)
