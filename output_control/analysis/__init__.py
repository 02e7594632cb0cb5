"""Checked analyses beyond tables: descriptive statistics, quantiles, charts, survival tables,
regressions, and differentially private results written for release.

Each function computes what pandas, numpy or statsmodels would, writes the releasable output
as CSV with an ``enclave-output-sidecar/2`` sidecar (frequency-table, magnitude-table and
model-output kinds), runs the policy's checks at once and prints them. Charts add a PNG drawn
from the checked counts; DP results carry an ``enclave-dp-output/1`` sidecar declaring the
privacy budget to charge on release.
"""

from output_control.analysis.charts import Chart, bar_chart, check_figure, histogram
from output_control.analysis.describe import DESCRIBE_STATISTICS, describe
from output_control.analysis.dp_outputs import DPOutput, read_dp_output, write_dp_result
from output_control.analysis.quantiles import quantiles
from output_control.analysis.regression import logit, ols, probit
from output_control.analysis.survival import kaplan_meier, survival_table

__all__ = [
    "DESCRIBE_STATISTICS",
    "Chart",
    "DPOutput",
    "bar_chart",
    "check_figure",
    "describe",
    "histogram",
    "kaplan_meier",
    "logit",
    "ols",
    "probit",
    "quantiles",
    "read_dp_output",
    "survival_table",
    "write_dp_result",
]
