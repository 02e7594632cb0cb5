"""Bundled disclosure-control policy files (TOML), loaded by ``output_control.policy``."""
