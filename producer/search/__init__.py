"""Finding jobs, for the API, the console, the CLI and the Python client.

- :mod:`producer.search.filters`: what a search asks for (:class:`Filters`).
- :mod:`producer.search.query`: a search as query parameters, read into filters.
- :mod:`producer.search.walk`: the indexes a search walks, a page at a time within a budget.
- :mod:`producer.search.cursors`: signed cursors, each made for one client.
- :mod:`producer.search.campaigns`: the campaigns' figures, from their counters.
- :mod:`producer.search.export`: the jobs a search finds, as CSV rows.

Only the intake side searches; the store (voicecall.store) reads the indexes for it.
"""
