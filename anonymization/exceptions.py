"""Errors of the anonymisation library; each message states the rule that was broken.

Every error subclasses `AnonymizationError` and the built-in exception a caller would expect
(`ValueError`, `TypeError`, `LookupError`), so generic handlers keep working. Messages never
contain a key or an identifier value: they name columns, counts, types and lengths only.
"""

from __future__ import annotations

from collections.abc import Sequence


class AnonymizationError(Exception):
    """Base class of every error the anonymisation library raises on purpose."""


class InvalidKeyError(AnonymizationError, ValueError):
    """A pseudonymisation key is not exactly 32 raw bytes (a 256-bit project data key).

    It is a `ValueError`, not the built-in `KeyError`, which means "missing mapping key".
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"a pseudonymisation key must be exactly 32 raw bytes (the 256-bit project data key "
            f"from the key store); {reason}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.reason,))


def _describe(column: str | None) -> str:
    return "the identifier array" if column is None else f"identifier column {column!r}"


class NullIdentifierError(AnonymizationError, ValueError):
    """An identifier is null: refused, because it would leak through or merge unrelated people."""

    def __init__(self, column: str | None, count: int) -> None:
        self.column = column
        self.count = count
        super().__init__(
            f"{_describe(column)} has {count} null value(s); identifiers must not be null "
            f"(a null cannot be pseudonymised and would either leak through or merge unrelated "
            f"people); drop or resolve these rows before pseudonymising"
        )

    def __reduce__(self) -> tuple[type, tuple[str | None, int]]:
        return (type(self), (self.column, self.count))


class EmptyIdentifierError(NullIdentifierError):
    """An identifier is the empty string: a missing value in disguise, rejected like a null."""

    def __init__(self, column: str | None, count: int) -> None:
        self.column = column
        self.count = count
        ValueError.__init__(
            self,
            f"{_describe(column)} has {count} empty string(s); identifiers must not be empty "
            f"(an empty string is a missing identifier and would give every such row the same "
            f"pseudonym, merging unrelated people); drop or resolve these rows before "
            f"pseudonymising",
        )


class UnsupportedIdentifierTypeError(AnonymizationError, TypeError):
    """An identifier column is neither strings nor integers (floats and binaries are refused)."""

    def __init__(self, column: str | None, type_name: str) -> None:
        self.column = column
        self.type_name = type_name
        super().__init__(
            f"{_describe(column)} has Arrow type {type_name}; identifiers must be strings or "
            f"integers (integers are hashed as their decimal string; floats, booleans and "
            f"binaries are refused because their text form is ambiguous)"
        )

    def __reduce__(self) -> tuple[type, tuple[str | None, str]]:
        return (type(self), (self.column, self.type_name))


class MissingColumnError(AnonymizationError, LookupError):
    """A column to pseudonymise is absent from the data."""

    def __init__(self, column: str, available: Sequence[str]) -> None:
        self.column = column
        self.available = tuple(available)
        shown = ", ".join(repr(name) for name in self.available) or "none"
        super().__init__(
            f"identifier column {column!r} is not in the data; every column named for "
            f"pseudonymisation must exist (available columns: {shown})"
        )

    def __reduce__(self) -> tuple[type, tuple[str, tuple[str, ...]]]:
        return (type(self), (self.column, self.available))


class ColumnConflictError(AnonymizationError, ValueError):
    """Column names are ambiguous: a duplicated source, or two outputs with the same name."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"column names must be unambiguous before and after pseudonymisation; {detail}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.detail,))


# --------------------------------------------------------------------------- risk measures
# Raised by `anonymization.risk` (sdcMicro-style disclosure risk measures). Messages name
# variables, counts and parameters, never a data value.


class RiskInputTypeError(AnonymizationError, TypeError):
    """Risk measures were given something other than a pandas DataFrame."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(
            f"risk measures take a pandas DataFrame (one row a record, one column a variable); "
            f"got a {type_name}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.type_name,))


class UnknownVariableError(AnonymizationError, LookupError):
    """A key, weight, household or sensitive variable named for a risk measure is not a column."""

    def __init__(self, variable: str, role: str, available: Sequence[str]) -> None:
        self.variable = variable
        self.role = role
        self.available = tuple(available)
        shown = ", ".join(repr(name) for name in self.available) or "none"
        super().__init__(
            f"{role} variable {variable!r} is not in the data; every variable named for a risk "
            f"measure must be a column (available columns: {shown})"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, tuple[str, ...]]]:
        return (type(self), (self.variable, self.role, self.available))


class VariableConflictError(AnonymizationError, ValueError):
    """Variable roles are ambiguous: a key named twice, or a variable in two exclusive roles."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"each variable of a risk measure must have one unambiguous role; {detail}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.detail,))


class EmptyDataError(AnonymizationError, ValueError):
    """A risk measure was asked of no records or of no key variables: there is nothing to rate."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"risk measures need at least one record and at least one key variable; {detail}"
        )

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.detail,))


class InvalidWeightError(AnonymizationError, ValueError):
    """Sampling weights are missing, infinite, non-numeric or not strictly positive."""

    def __init__(self, column: str, detail: str) -> None:
        self.column = column
        self.detail = detail
        super().__init__(
            f"sampling weight column {column!r} {detail}; weights must be finite numbers > 0 "
            f"(each record stands for that many population units), so fix or drop these rows"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.column, self.detail))


class NullHouseholdError(AnonymizationError, ValueError):
    """A household (cluster) identifier is missing, so the record's household risk is undefined."""

    def __init__(self, column: str, count: int) -> None:
        self.column = column
        self.count = count
        super().__init__(
            f"household column {column!r} has {count} missing value(s); every record needs a "
            f"household identifier for the household risk 1 - prod(1 - r_i) over its members "
            f"(give a one-person household its own identifier)"
        )

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return (type(self), (self.column, self.count))


class InvalidParameterError(AnonymizationError, ValueError):
    """A parameter of a risk measure is outside its documented range."""

    def __init__(self, name: str, rule: str, value: object) -> None:
        self.name = name
        self.rule = rule
        self.value = value
        super().__init__(f"parameter {name!r} must be {rule}; got {value!r}")

    def __reduce__(self) -> tuple[type, tuple[str, str, object]]:
        return (type(self), (self.name, self.rule, self.value))


# --------------------------------------------------------------------------- protection methods
# Raised by `anonymization.protection` (sdcMicro-style recoding, suppression, PRAM,
# microaggregation, noise and utility measures). Messages name methods, variables, counts and
# parameters; numeric data values never appear (category labels of a recoding map may).


class ProtectionInputTypeError(AnonymizationError, TypeError):
    """A protection method was given something other than a pandas DataFrame."""

    def __init__(self, method: str, type_name: str) -> None:
        self.method = method
        self.type_name = type_name
        super().__init__(
            f"{method} takes a pandas DataFrame (one row a record, one column a variable); "
            f"got a {type_name}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.method, self.type_name))


class ProtectionVariableError(AnonymizationError, LookupError):
    """A variable named for a protection method is not a column of the data."""

    def __init__(self, method: str, variable: object, available: Sequence[str]) -> None:
        self.method = method
        self.variable = variable
        self.available = tuple(str(name) for name in available)
        shown = ", ".join(repr(name) for name in self.available) or "none"
        super().__init__(
            f"{method}: variable {variable!r} is not in the data; every variable named for "
            f"{method} must be a column (available columns: {shown})"
        )

    def __reduce__(self) -> tuple[type, tuple[str, object, tuple[str, ...]]]:
        return (type(self), (self.method, self.variable, self.available))


class ProtectionParameterError(AnonymizationError, ValueError):
    """A parameter of a protection method breaks its documented rule (k < 2, p outside [0, 1])."""

    def __init__(self, method: str, name: str, rule: str, value: object) -> None:
        self.method = method
        self.name = name
        self.rule = rule
        self.value = value
        super().__init__(f"{method}: parameter {name!r} must be {rule}; got {value!r}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, object]]:
        return (type(self), (self.method, self.name, self.rule, self.value))


class NonNumericVariableError(AnonymizationError, TypeError):
    """A method that computes with values (MDAV, noise, IL1s) was given a non-numeric column."""

    def __init__(self, method: str, variable: str, dtype: str) -> None:
        self.method = method
        self.variable = variable
        self.dtype = dtype
        super().__init__(
            f"{method}: variable {variable!r} has dtype {dtype}; {method} computes means and "
            f"distances, so its variables must be numeric (integers or floats, not booleans, "
            f"strings or categories)"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (self.method, self.variable, self.dtype))


class MissingNumericValueError(AnonymizationError, ValueError):
    """A numeric variable for a method that needs complete data holds NaN or infinite values."""

    def __init__(self, method: str, variable: str, count: int) -> None:
        self.method = method
        self.variable = variable
        self.count = count
        super().__init__(
            f"{method}: variable {variable!r} has {count} missing or infinite value(s); "
            f"{method} needs complete, finite data (impute or drop these records first)"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, int]]:
        return (type(self), (self.method, self.variable, self.count))


class TransitionMatrixError(AnonymizationError, ValueError):
    """A PRAM transition matrix is not a valid Markov matrix over the variable's categories."""

    def __init__(self, variable: str, rule: str) -> None:
        self.variable = variable
        self.rule = rule
        super().__init__(
            f"pram: the transition matrix of {variable!r} is invalid: {rule}; a transition "
            f"matrix is square, labelled by the same categories on rows and columns (covering "
            f"every category in the data), with entries >= 0 and every row summing to 1"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.variable, self.rule))


class UnmappedValueError(AnonymizationError, ValueError):
    """Global recoding met values that no break interval or label map covers, and no default."""

    def __init__(self, variable: str, count: int, detail: str) -> None:
        self.variable = variable
        self.count = count
        self.detail = detail
        super().__init__(
            f"global_recode: {count} value(s) of {variable!r} are not covered ({detail}); every "
            f"non-missing value must fall in a break interval or the label map, unless a "
            f"default is given"
        )

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return (type(self), (self.variable, self.count, self.detail))


class TooFewRecordsError(AnonymizationError, ValueError):
    """A group of records (the data or a stratum) is smaller than the k a method must reach."""

    def __init__(self, method: str, records: int, k: int, where: str) -> None:
        self.method = method
        self.records = records
        self.k = k
        self.where = where
        super().__init__(
            f"{method}: {where} has {records} record(s), fewer than k={k}; groups of at least "
            f"k records cannot be formed, so merge strata or lower k"
        )

    def __reduce__(self) -> tuple[type, tuple[str, int, int, str]]:
        return (type(self), (self.method, self.records, self.k, self.where))


# --------------------------------------------------------------------------- differential privacy
# Raised by `anonymization.dp` (differentially private statistics through diffprivlib). Messages
# name functions, columns, parameters and counts, never a data value: a DP query's inputs are
# confidential, and only its noisy output may leave.


class DifferentialPrivacyError(AnonymizationError):
    """Base class of the errors of `anonymization.dp`: the query was refused, nothing computed."""


class MissingBoundsError(DifferentialPrivacyError, ValueError):
    """A bound of a DP query is missing: bounds are never read from the data, they are given."""

    def __init__(self, function: str, name: str) -> None:
        self.function = function
        self.name = name
        super().__init__(
            f"{function}: {name} is missing; a differentially private query needs explicit "
            f"bounds set from domain knowledge (a score scale, a plausible maximum), because "
            f"bounds read from the data (its minimum and maximum) leak the extreme records"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.function, self.name))


class InvalidBoundsError(DifferentialPrivacyError, ValueError):
    """Bounds of a DP query are not two finite numbers with lower < upper."""

    def __init__(self, function: str, name: str, detail: str) -> None:
        self.function = function
        self.name = name
        self.detail = detail
        super().__init__(
            f"{function}: {name} must be (lower, upper), two finite numbers with lower < upper "
            f"(or, for bin edges, a strictly increasing sequence of finite numbers); {detail}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (self.function, self.name, self.detail))


class DPParameterError(DifferentialPrivacyError, ValueError):
    """A parameter of a DP query breaks its rule (epsilon <= 0, max_contributions < 1, ...)."""

    def __init__(self, function: str, name: str, rule: str, value: object) -> None:
        self.function = function
        self.name = name
        self.rule = rule
        self.value = value
        super().__init__(f"{function}: parameter {name!r} must be {rule}; got {value!r}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, object]]:
        return (type(self), (self.function, self.name, self.rule, self.value))


class DPInputError(DifferentialPrivacyError, TypeError):
    """A DP query was given something it cannot compute on (not a DataFrame, a text column)."""

    def __init__(self, function: str, detail: str) -> None:
        self.function = function
        self.detail = detail
        super().__init__(f"{function}: {detail}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.function, self.detail))


class DPColumnError(DifferentialPrivacyError, LookupError):
    """A column named for a DP query (the values or the pupil identifier) is not in the data."""

    def __init__(self, function: str, column: object, available: Sequence[str]) -> None:
        self.function = function
        self.column = column
        self.available = tuple(str(name) for name in available)
        shown = ", ".join(repr(name) for name in self.available) or "none"
        super().__init__(
            f"{function}: column {column!r} is not in the data; every column named for a DP "
            f"query must exist (available columns: {shown})"
        )

    def __reduce__(self) -> tuple[type, tuple[str, object, tuple[str, ...]]]:
        return (type(self), (self.function, self.column, self.available))


class DPMissingValueError(DifferentialPrivacyError, ValueError):
    """A column of a DP query holds missing values: they must be dropped or imputed first."""

    def __init__(self, function: str, column: str, count: int) -> None:
        self.function = function
        self.column = column
        self.count = count
        super().__init__(
            f"{function}: column {column!r} has {count} missing value(s); a DP query counts "
            f"every row and bounds every value, so drop or impute missing values first (a "
            f"missing pupil identifier would hide how many rows one pupil contributes)"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, int]]:
        return (type(self), (self.function, self.column, self.count))


class PrivacyLeakError(DifferentialPrivacyError, RuntimeError):
    """diffprivlib warned of a privacy leak (PrivacyLeakWarning): the query is refused."""

    def __init__(self, function: str, warning: str) -> None:
        self.function = function
        self.warning = warning
        super().__init__(
            f"{function}: diffprivlib reported a privacy leak and the result was discarded "
            f"({warning}); a DP query must not learn anything from the data outside its "
            f"mechanism"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.function, self.warning))
