"""The worker's ``voicecall`` subcommands, registered as entry points in pyproject.toml.

Only names and help: each target is imported when its command runs (voicecall.cli).
"""

from voicecall.cli import Command

WORKER = Command(
    "worker.cli:main", "run Dramatiq workers (send, poll, webhooks) with the scheduler", ("worker",)
)
SCHEDULER = Command("worker.cli:scheduler_main", "run only the scheduler and sweeper", ("worker",))
DLQ = Command("worker.dlq:main", "dead letters: list | show | requeue | purge")
