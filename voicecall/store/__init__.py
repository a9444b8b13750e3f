"""The job store: the only code that talks to Redis for voicecall's keys. It runs the job
steps (one Lua script each: ``lua/``, sources from :mod:`voicecall.store.scripts`) and reads
jobs, indexes, queues and the process-level keys back as typed values.

A ruff banned-api rule (pyproject.toml) and tests/test_store_boundary.py keep Redis in here.
"""
