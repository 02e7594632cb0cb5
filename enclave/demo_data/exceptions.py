"""Errors of the synthetic data generator; each message states the rule that was broken."""

from __future__ import annotations


class DemoDataError(ValueError):
    """An argument or a target folder breaks a rule of the generator; nothing was published."""
