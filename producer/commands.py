"""The producer's ``voicecall`` subcommands, registered as entry points in pyproject.toml.

Only names and help: each target is imported when its command runs (voicecall.cli).
"""

from voicecall.cli import Command

API = Command("producer.server:main", "serve the HTTP API and the eSMS callback receiver", ("api",))
ENQUEUE = Command("producer.cli:enqueue_main", "enqueue one call: otp | record | template")
STATUS = Command("producer.cli:status_main", "show a job and its history")
CANCEL = Command("producer.cli:cancel_main", "cancel a job not yet handed to eSMS")
IMPORT = Command("producer.cli:import_main", "validate and enqueue the calls in a CSV file")
JOBS = Command(
    "producer.bulk_cli:jobs_main", "list jobs by state, label, phone, time; cancel in bulk"
)
CAMPAIGN = Command("producer.search_cli:campaign_main", "campaigns: list | show NAME")
EXPORT = Command("producer.search_cli:export_main", "write the jobs a search finds as CSV")
