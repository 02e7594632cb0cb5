"""Workspaces: where notebooks run against a project's extract (sandboxing arrives with the hub)."""
