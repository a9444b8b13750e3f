"""Schemathesis fuzzes every operation of the OpenAPI document against the real API server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.api import ApiServer

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(
    SCHEMATHESIS is None, reason="schemathesis is not installed (make test installs it)"
)
def test_no_operation_answers_a_server_error(api_server: ApiServer) -> None:
    """Generated valid and invalid requests to every operation never get a 5xx."""
    assert SCHEMATHESIS is not None
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{api_server.base_url}/openapi.json",
            "-H",
            f"Authorization: Bearer {api_server.token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
