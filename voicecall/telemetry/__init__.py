"""Logs and metrics: structlog lines with redaction, every ``voicecall_*`` metric, and what is
counted once when a job ends."""
