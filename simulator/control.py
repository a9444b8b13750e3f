"""The ``/_sim`` endpoints: look inside a running simulator and change its knobs.

No eSMS authentication and no faults here. ``GET /_sim/calls`` is the ledger,
``GET /_sim/stats`` the counters, ``GET``/``PATCH /_sim/config`` the knobs,
``POST /_sim/reset`` forgets everything (and restores the start-up config unless
``?keep_config=true``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import ValidationError

from simulator.engine import Simulator


def control_router(sim: Simulator) -> APIRouter:
    """The router of the control endpoints."""
    router = APIRouter(prefix="/_sim", tags=["control"])

    @router.get("/health")
    async def health() -> dict[str, object]:
        """Answers while the server runs."""
        return {"ok": True}

    @router.get("/calls")
    async def calls(
        phone: str | None = None, request_id: str | None = None, kind: str | None = None
    ) -> list[dict[str, object]]:
        """Every accepted call, oldest first; optional filters on phone, RequestId, kind."""
        now = time.time()
        return [
            record.to_json(now)
            for record in sim.state.ledger.values()
            if (phone is None or phone in (record.phone, record.national))
            and (request_id is None or record.request_id == request_id)
            and (kind is None or record.kind == kind)
        ]

    @router.get("/calls/{smsid}")
    async def call(smsid: str) -> dict[str, object]:
        """One call of the ledger by SMSID (a trailing space is ignored); 404 if unknown."""
        record = sim.state.ledger.get(smsid.strip())
        if record is None:
            raise HTTPException(status_code=404, detail="unknown SMSID")
        return record.to_json(time.time())

    @router.get("/stats")
    async def stats() -> dict[str, object]:
        """Requests per endpoint and result, status lookups per SMSID, callbacks, faults."""
        data = sim.state.stats.to_json()
        data["balance"] = sim.state.balance
        data["calls"] = len(sim.state.ledger)
        data["pending_lives"] = sim.pending
        return data

    @router.get("/config")
    async def get_config() -> dict[str, object]:
        """The current knobs (credentials masked)."""
        return sim.config.public()

    @router.patch("/config")
    async def patch_config(changes: Annotated[dict[str, Any], Body()]) -> dict[str, object]:
        """Change knobs at run time; 422 naming the knob if a value is invalid."""
        try:
            return sim.reconfigure(changes).public()
        except ValidationError as exc:
            errors = [
                {"knob": ".".join(str(part) for part in err["loc"]), "error": err["msg"]}
                for err in exc.errors()
            ]
            raise HTTPException(status_code=422, detail=errors) from None

    @router.post("/reset")
    async def reset(keep_config: bool = False) -> dict[str, object]:
        """Forget calls, RequestIds and counters, restore the balance (and the config)."""
        await sim.reset(keep_config=keep_config)
        return {"ok": True, "config": sim.config.public()}

    return router
