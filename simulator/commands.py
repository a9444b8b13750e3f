"""The simulator's ``voicecall`` subcommands, registered as entry points in pyproject.toml.

Only names and help: each target is imported when its command runs (voicecall.cli).
"""

from voicecall.cli import Command

ESMS_SIM = Command("simulator.cli:main", "run the local eSMS simulator", ("sim",))
DEMO = Command("simulator.demo:main", "the `make run` demo", ("api", "worker", "sim"))
