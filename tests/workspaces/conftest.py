"""Fixtures of the workspace tests: the workflow tests' factory over both backends."""

from tests.workflows.conftest import factory, raw_zone, sqlite_factory

__all__ = ["factory", "raw_zone", "sqlite_factory"]
