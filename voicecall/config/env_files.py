"""The files settings are read from besides the environment: ``.env``, then ``.env.demo``.

Both are read from the current directory, a variable of the environment winning over both.
``.env`` is yours and voicecall never writes it. ``.env.demo`` is written by ``make run``
(``voicecall demo --serve``) while the demo runs and removed when it stops: it names the
demo's Redis (``REDIS_URL``), API (``VOICECALL_URL``) and token (``VOICECALL_TOKEN``), so the
CLI, ``VoiceCallClient.from_env()`` and ``voicecall.Client()`` run from the checkout reach the
demo, and ``. ./.env.demo`` gives a shell the same values. While it exists it wins over
``.env`` (the demo's settings are what a command run there is meant to use).
"""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values

DEMO_ENV_FILE = ".env.demo"
ENV_FILES = (".env", DEMO_ENV_FILE)  # pydantic-settings' order: a later file wins


def env_file_value(name: str) -> str | None:
    """``name``'s value in the settings files of the current directory (the last file that
    sets it wins), or None."""
    found: str | None = None
    for file in ENV_FILES:
        if Path(file).is_file():
            found = dotenv_values(file).get(name) or found
    return found
