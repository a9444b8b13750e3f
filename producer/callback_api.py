"""The eSMS callback receiver, mounted on the API app (filled in by the worker issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
