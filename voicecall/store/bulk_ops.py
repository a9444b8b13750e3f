"""Bulk operations' records (``vc:bulk:{id}``, a hash): what a bulk action is doing and how
far it got, written by the process that runs it (producer.bulk) and read by whoever asks.
Each record expires ``keys.BULK_OP_TTL_S`` after its last write."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis

from voicecall.job import keys


class BulkOps:
    _redis: redis.Redis

    def write_bulk_op(self, op_id: str, fields: Mapping[str, str]) -> None:
        """Set ``fields`` of the operation's record (creating it), and renew its expiry."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.bulk_op(op_id), mapping=cast(Any, dict(fields)))
        pipe.expire(keys.bulk_op(op_id), keys.BULK_OP_TTL_S)
        pipe.execute()

    def bulk_op(self, op_id: str) -> dict[str, Any]:
        """The operation's record, or {} when there is none (never made, or expired)."""
        return cast(dict[str, Any], self._redis.hgetall(keys.bulk_op(op_id)))
