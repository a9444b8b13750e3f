"""The FastAPI application of the simulator: :func:`create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from simulator.config import SimConfig
from simulator.control import control_router
from simulator.engine import Simulator
from simulator.esms_routes import esms_router


def create_app(config: SimConfig) -> FastAPI:
    """A simulator app with its own in-memory state (``app.state.sim``)."""
    sim = Simulator(config)
    app = FastAPI(
        title="eSMS simulator",
        lifespan=sim.lifespan,
        docs_url="/_sim/docs",
        openapi_url="/_sim/openapi.json",
        redoc_url=None,
    )
    app.state.sim = sim
    app.include_router(esms_router(sim))
    app.include_router(control_router(sim))
    return app
