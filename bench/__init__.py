"""voicecall benchmarks: ``python -m bench.run [--quick]`` (``make bench``), see docs/benchmarks.md."""
