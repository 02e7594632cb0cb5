"""Checked analyses beyond tables: descriptive statistics and regressions.

Each function computes what pandas or statsmodels would, writes the releasable output as CSV
with an ``enclave-output-sidecar/2`` sidecar (the existing magnitude-table and model-output
kinds), runs the policy's checks at once and prints them.
"""

from output_control.analysis.describe import DESCRIBE_STATISTICS, describe
from output_control.analysis.regression import logit, ols, probit

__all__ = ["DESCRIBE_STATISTICS", "describe", "logit", "ols", "probit"]
