"""Protection methods and utility measures for microdata, after R's sdcMicro (pure library).

Every function takes a pandas DataFrame and returns a new one (or a frozen result holding
it); the input is never modified. Randomised methods take an explicit
``numpy.random.Generator``. Each module's docstring gives the formula and its source.

* `recoding`: `global_recode` (breaks or label map), `top_bottom_coding`;
* `suppression`: `local_suppression` to k-anonymity with an importance order;
* `pram`: post-randomisation, invariant or with a given transition matrix;
* `microaggregation`: multivariate MDAV microaggregation;
* `noise`: additive and correlated noise (`add_noise`);
* `utility`: IL1s, changes of means, variances and correlations, suppression counts.
"""

from anonymization.protection.microaggregation import (
    MicroaggregationResult,
    mdav_groups,
    microaggregation,
)
from anonymization.protection.noise import add_noise
from anonymization.protection.pram import (
    PramResult,
    default_transition_matrix,
    invariant_matrix,
    pram,
)
from anonymization.protection.recoding import global_recode, interval_labels, top_bottom_coding
from anonymization.protection.suppression import (
    LocalSuppressionResult,
    default_importance,
    local_suppression,
)
from anonymization.protection.utility import (
    UtilityReport,
    correlation_changes,
    il1s,
    il1s_by_variable,
    moment_changes,
    suppression_counts,
    utility_report,
)

__all__ = [
    "LocalSuppressionResult",
    "MicroaggregationResult",
    "PramResult",
    "UtilityReport",
    "add_noise",
    "correlation_changes",
    "default_importance",
    "default_transition_matrix",
    "global_recode",
    "il1s",
    "il1s_by_variable",
    "interval_labels",
    "invariant_matrix",
    "local_suppression",
    "mdav_groups",
    "microaggregation",
    "moment_changes",
    "pram",
    "suppression_counts",
    "top_bottom_coding",
    "utility_report",
]
