"""Secure research data enclave of DEPP: core, workflows and edges."""
