"""voicecall: outbound voice calls through eSMS.vn, placed exactly once by Dramatiq workers.

The ``voicecall`` package holds what the intake side (``producer``) and the sending side
(``worker``) share, one concern per subpackage; each imports only those above it here:

- ``errors``: every error voicecall raises on purpose, under one root.
- ``formats``: phone numbers, kept free text and times, read and shown one way.
- ``webhooks``: where a webhook may go, and how it is signed.
- ``config``: the one settings object, the API clients it names, secrets kept apart.
- ``job``: the job itself: its words, contract, record, keys, index places and lifecycle.
- ``telemetry``: logs and metrics.
- ``store``: the only code that talks to Redis: runs the job steps (Lua), reads jobs back.
- ``esms``: eSMS's reports and the signed callbacks, read once for both sides.
- ``client``: the HTTP API's client for other teams (``voicecall.Client``, ``AsyncClient``).
- ``cli``: the ``voicecall`` command; each package registers its own subcommands.

The dependency points one way: ``producer`` and ``worker`` import ``voicecall``, never each
other, and ``voicecall`` imports neither. Importing ``voicecall`` itself loads nothing else.

``voicecall.Client`` and ``voicecall.AsyncClient`` are the HTTP API's client
(:mod:`voicecall.client`, the ``client`` extra), imported on first use: ``import voicecall``
alone loads neither httpx nor anything else of the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from voicecall.client import AsyncClient, Client
else:

    def __getattr__(name: str) -> object:
        if name in ("Client", "AsyncClient"):
            from voicecall import client

            return getattr(client, name)
        raise AttributeError(f"module 'voicecall' has no attribute {name!r}")
