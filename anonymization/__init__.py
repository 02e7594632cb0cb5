"""Anonymisation library of the enclave: pure functions (no database, no web), sdcMicro in Python.

- `anonymization.pseudonyms`: pseudonymisation by keyed hash over Arrow batches (re-exported here);
- `anonymization.risk`: sdcMicro's risk measures (freqCalc, measure_risk/indivRisk, ldiversity,
  suda2, a record-level risk table);
- `anonymization.protection`: sdcMicro's protection methods (globalRecode, topBotCoding,
  localSuppression, pram, MDAV microaggregation, addNoise) and utility measures;
- `anonymization.dp`: differential privacy (count, sum, mean, histogram, quantile) through
  diffprivlib, with explicit bounds and per-pupil contribution bounds;
- `anonymization.exceptions`: errors whose messages state the rule that was broken.

The subpackages are imported on demand so that pseudonymisation stays light to import.
"""

from anonymization.exceptions import (
    AnonymizationError,
    ColumnConflictError,
    EmptyIdentifierError,
    InvalidKeyError,
    MissingColumnError,
    NullIdentifierError,
    UnsupportedIdentifierTypeError,
)
from anonymization.pseudonyms import (
    PseudonymCache,
    Pseudonymiser,
    pseudonym,
    pseudonymise_array,
)

__all__ = [
    "AnonymizationError",
    "ColumnConflictError",
    "EmptyIdentifierError",
    "InvalidKeyError",
    "MissingColumnError",
    "NullIdentifierError",
    "PseudonymCache",
    "Pseudonymiser",
    "UnsupportedIdentifierTypeError",
    "pseudonym",
    "pseudonymise_array",
]
