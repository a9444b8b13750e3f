# Order matters: a plugin must be registered before another plugin imports it.
pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.sim",
    "tests.fixtures.api",
    "tests.fixtures.stack",
    "tests.fixtures.clients",
    "tests.fixtures.sentinel",
]
