"""Provisioning tests reuse the workflow tests' raw zone and shared enclave (both backends)."""

from tests.workflows.conftest import raw_zone, shared_factory

__all__ = ["raw_zone", "shared_factory"]
