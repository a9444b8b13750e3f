"""voicecall: outbound voice calls through eSMS.vn, placed exactly once by Dramatiq workers.

The ``voicecall`` package holds what the intake side (``producer``) and the sending side
(``worker``) share: settings, logging, the job contract, the Redis key layout and the job store.
The dependency points one way: ``producer`` and ``worker`` import ``voicecall``, never each other.

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
