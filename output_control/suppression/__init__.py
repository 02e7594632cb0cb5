"""Secondary cell suppression for 2-D tables with margins, and its audit by linear programming.

Once the disclosure rules have flagged primary cells, suppressing them alone is not enough: a
lone suppressed cell in a row whose total is published is recovered by subtraction, and a few
suppressed cells may still be narrowed to a small interval. This package chooses complementary
suppressions so that every primary cell keeps its protection interval (tau-ARGUS upper and
lower protection levels), either optimally (``suppress_optimal``: MILP with Fischetti-Salazar
cut generation, HiGHS via scipy) or fast (``suppress_hypercube``: cheapest protecting
rectangle per primary cell), and proves it with an LP audit (``audit_pattern``,
``require_protected``), which refuses any pattern leaving a primary cell exposed.

Pure library: numpy and scipy only.
"""

from output_control.suppression.audit import (
    AuditReport,
    CellInterval,
    audit_pattern,
    require_protected,
)
from output_control.suppression.exceptions import (
    InfeasibleProtection,
    SuppressionError,
    UnprotectedPattern,
)
from output_control.suppression.hypercube import suppress_hypercube
from output_control.suppression.optimal import suppress_optimal
from output_control.suppression.problem import (
    SuppressionProblem,
    make_problem,
    p_percent_protection,
    with_margins,
)
from output_control.suppression.result import SuppressionResult

__all__ = [
    "AuditReport",
    "CellInterval",
    "InfeasibleProtection",
    "SuppressionError",
    "SuppressionProblem",
    "SuppressionResult",
    "UnprotectedPattern",
    "audit_pattern",
    "make_problem",
    "p_percent_protection",
    "require_protected",
    "suppress_hypercube",
    "suppress_optimal",
    "with_margins",
]
