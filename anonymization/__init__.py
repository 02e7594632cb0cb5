"""Anonymisation library of the enclave: pure functions over Arrow data (no database, no web).

Pseudonymisation by keyed hash lives in `anonymization.pseudonyms`; errors, whose messages
state the rule that was broken, in `anonymization.exceptions`.
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
