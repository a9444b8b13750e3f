"""``python -m simulator``: run the eSMS simulator (see :func:`simulator.cli.main`)."""

from simulator.cli import main

raise SystemExit(main())
