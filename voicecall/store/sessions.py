"""The operator console's sessions: open only while Redis lists them (producer.console)."""

from __future__ import annotations

import redis

from voicecall.job import keys


class ConsoleSessions:
    """Console sessions, for the blocking store."""

    _redis: redis.Redis

    def open_console_session(self, tid: str, sid: str, *, ends_at: float, now: float) -> None:
        """Record a console session of token ``tid`` until ``ends_at``; of that token's
        sessions, ended ones leave and only the newest CONSOLE_SESSIONS_PER_TOKEN stay."""
        key = keys.console_sessions(tid)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {keys.console_session_member(sid): ends_at})
        pipe.zremrangebyrank(key, 0, -keys.CONSOLE_SESSIONS_PER_TOKEN - 1)
        pipe.expireat(key, int(ends_at) + 1)
        pipe.execute()

    def console_session_open(self, tid: str, sid: str, *, now: float) -> bool:
        """True while the session is recorded (not logged out, not pushed out) and not ended."""
        ends_at = self._redis.zscore(keys.console_sessions(tid), keys.console_session_member(sid))
        return ends_at is not None and float(ends_at) > now

    def end_console_session(self, tid: str, sid: str) -> None:
        self._redis.zrem(keys.console_sessions(tid), keys.console_session_member(sid))
