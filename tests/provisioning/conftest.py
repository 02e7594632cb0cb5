"""Provisioning tests reuse the workflow tests' raw zone and enclaves (both backends, or
SQLite only for the command line's tests)."""

from tests.workflows.conftest import raw_zone, shared_factory, sqlite_factory

__all__ = ["raw_zone", "shared_factory", "sqlite_factory"]
