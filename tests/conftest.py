"""Shared pytest fixtures: servers, databases and file builders live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.servers",
    "tests.fixtures.smtp",
    "tests.fixtures.service",
    "tests.fixtures.office",
    "tests.fixtures.archives",
    "tests.fixtures.private_postgres",
]
