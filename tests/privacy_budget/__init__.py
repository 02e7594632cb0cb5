"""Tests of the privacy budget workflow (enclave.privacy_budget)."""
