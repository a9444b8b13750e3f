"""A faithful local fake of eSMS.vn's voice HTTP API, with fault injection.

Used by the demo and by every integration test. The layout, top-down:

- :mod:`simulator.config`: :class:`SimConfig`, every knob, validated, with named defaults.
- :mod:`simulator.cli`: ``python -m simulator`` / ``voicecall esms-sim``; one flag per knob.
- :mod:`simulator.app`: :func:`create_app`, the FastAPI application.
- :mod:`simulator.esms_routes`: the eSMS endpoints (send, status, balance).
- :mod:`simulator.sending` / :mod:`simulator.status`: what those endpoints answer.
- :mod:`simulator.outcomes` / :mod:`simulator.timeline`: who answers, and a call's life.
- :mod:`simulator.engine`: the running simulator (state, life tasks, callbacks).
- :mod:`simulator.callbacks`: the GET to the partner's ``CallbackUrl``.
- :mod:`simulator.faults`: latency, HTTP 500, hangs, lost responses, the TPS limit.
- :mod:`simulator.control`: the ``/_sim/*`` endpoints tests use to look inside.
- :mod:`simulator.demo`: ``voicecall demo`` (``make run``), the whole pipeline against the
  simulator: it starts Redis, the simulator, the API and a worker as processes.
- :mod:`simulator.commands`: the ``voicecall`` subcommands this package registers.

Importing ``simulator`` loads nothing else: ``voicecall --help`` reads the commands without
FastAPI installed.

See ``docs/simulator.md`` for the behaviour and every knob.
"""
