"""Output control: disclosure checks on what researchers ask to take out of the enclave.

The rule engine, the sidecar format and the checked notebook functions are a pure library
(pandas, no database, no web), usable alone as ACRO is. ``output_control.review`` is the
workflow on top of it.
"""

from output_control.checked import crosstab, pivot_table
from output_control.exceptions import (
    InvalidOutputName,
    InvalidTable,
    MissingUnitsError,
    OutputControlError,
    OutputRejected,
    PolicyError,
)
from output_control.policy import Policy, load_policy, parse_policy
from output_control.rules import check_table
from output_control.sidecar import check_output, read_output
from output_control.table import Cell, SidecarTable, TableKind, Unit
from output_control.verdicts import CellFinding, CheckResult, Outcome, RuleVerdict, summarise

__all__ = [
    "Cell",
    "CellFinding",
    "CheckResult",
    "InvalidOutputName",
    "InvalidTable",
    "MissingUnitsError",
    "Outcome",
    "OutputControlError",
    "OutputRejected",
    "Policy",
    "PolicyError",
    "RuleVerdict",
    "SidecarTable",
    "TableKind",
    "Unit",
    "check_output",
    "check_table",
    "crosstab",
    "load_policy",
    "parse_policy",
    "pivot_table",
    "read_output",
    "summarise",
]
