"""The ``row_level_content`` verdict of a frozen file: no pseudonym of the project's extract.

Which pseudonyms: those of **every published extract version of the project**. The brief
asked for the version the file's sidecar names, or the latest one; but a sidecar is written
in the researcher's workspace, and the project's key (so a pupil's pseudonym) is the same in
every version, so a table made from an earlier version's data or a sidecar naming the wrong
version would escape a check against one version. The union costs one more binary search per
version (each version's index is built once, :mod:`output_control.review.pseudonym_index`).
A sidecar that names a version the project has not published fails the check (its pupils
cannot be known), as does a project with no published extract or an index that cannot be read.

What is searched (:mod:`output_control.row_level`): the frozen file's text cells (a CSV's
labels and values; another file's text), and for a figure, the cells of the table it was drawn
from (frozen beside it), since the figure shows that table's labels. Sidecars are not released
and not searched.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave.provisioning.models import Extract
from output_control.analysis.charts import FIGURE_SUFFIX
from output_control.exceptions import OutputRejected
from output_control.files import read_limited
from output_control.review import checks
from output_control.review.pseudonym_index import (
    ExtractRef,
    PseudonymsUnreadable,
    pseudonyms_of,
)
from output_control.row_level import (
    RULE,
    SortedPseudonyms,
    TextCell,
    file_cells,
    redact,
    row_level_verdict,
)
from output_control.verdicts import CellFinding, CheckResult, Outcome, RuleVerdict


def published_extracts(session: Session, project_id: str) -> list[ExtractRef]:
    """The project's published extract versions, oldest first."""
    rows = session.execute(select(Extract).where(
        Extract.project_id == project_id, Extract.status == "published")
        .order_by(Extract.version)).scalars()
    return [ExtractRef(r.project_id, r.version, Path(r.path), r.manifest_sha256) for r in rows]


class _AnyOf:
    """Membership in any of several pseudonym sets, many candidates at once."""

    def __init__(self, sets: Sequence[SortedPseudonyms]) -> None:
        self.sets = sets

    def __contains__(self, value: object) -> bool:
        return any(value in s for s in self.sets)

    def contains_many(self, candidates: Sequence[str] | np.ndarray) -> np.ndarray:
        found = np.zeros(len(candidates), dtype=bool)
        for s in self.sets:
            found |= s.contains_many(candidates)
        return found


@dataclass(frozen=True)
class ProjectPseudonyms:
    """The pseudonyms of a project's published extracts, opened before files are checked
    (so no index is built inside a database transaction); ``errors`` holds the versions
    whose pseudonyms could not be read, with why."""

    sets: dict[int, SortedPseudonyms]
    errors: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, extracts: Sequence[ExtractRef]) -> ProjectPseudonyms:
        """Open (building where needed) the index of each extract version."""
        sets, errors = {}, {}
        for ref in extracts:
            try:
                sets[ref.version] = pseudonyms_of(ref)
            except PseudonymsUnreadable as exc:
                errors[ref.version] = str(exc)
        return cls(sets, errors)

    def _scope(self) -> str:
        versions = ", ".join(f"v{v} ({len(s):,} pupils)" for v, s in sorted(self.sets.items()))
        return f"the pupil pseudonyms of extract {versions}"

    def verdict(self, path: Path, *, max_bytes: int) -> RuleVerdict:
        """The row-level verdict of the frozen file ``path`` (see the module's docstring)."""
        if self.errors:
            return _fail("the pseudonyms of the extract could not be read to check the "
                         "file for row-level content: " + "; ".join(
                             f"v{v}: {why}" for v, why in sorted(self.errors.items())))
        if not self.sets:
            return _fail("the project has no published extract whose pseudonyms the file "
                         "could be checked against")
        _notebook, named = checks.recorded_provenance(path)
        if named is not None and named not in self.sets:
            return _fail(f"the file's sidecar names extract v{named}, which the project has "
                         "not published: its pupils' pseudonyms cannot be known")
        try:
            cells = _cells(path, max_bytes)
        except OutputRejected as exc:
            return _fail(f"the file could not be read for row-level content: {exc.reason}")
        return row_level_verdict(cells, self._members(), scope=self._scope())

    def _members(self) -> Container[str]:
        return _AnyOf(list(self.sets.values()))

    def checked(self, result: CheckResult, path: Path, *, max_bytes: int) -> CheckResult:
        """``result`` with the row-level verdict of ``path`` set (replacing an earlier one).
        When pseudonyms were found, the other rules' messages and cells, which quote the
        table's labels, are redacted too, so no stored verdict repeats a pseudonym."""
        verdict = self.verdict(path, max_bytes=max_bytes)
        kept = [v for v in result.verdicts if v.rule != RULE]
        if verdict.outcome is Outcome.FAIL and verdict.cells:
            members = self._members()
            kept = [_redacted(v, members) for v in kept]
        return CheckResult.from_verdicts((*kept, verdict), result.policy_name,
                                         result.policy_version, result.policy_sha256)


def _fail(reason: str) -> RuleVerdict:
    return RuleVerdict(RULE, Outcome.FAIL, reason)


def _cells(path: Path, max_bytes: int) -> list[TextCell]:
    """The text cells of a frozen file, and for a figure those of its frozen table."""
    cells = file_cells(path.name, read_limited(path, max_bytes, "output file"))
    if path.name.endswith(FIGURE_SUFFIX):
        data = checks.figure_data_name(path.with_name(path.name + checks.SIDECAR_SUFFIX))
        if data is not None and (path.parent / data).exists():
            cells += file_cells(data, read_limited(path.parent / data,
                                                   checks.MAX_COMPANION_BYTES * 9,
                                                   "figure table"), part=data)
    return cells


def _redacted(verdict: RuleVerdict, members: Container[str]) -> RuleVerdict:
    def text(value: str) -> str:
        return redact(value, members)

    cells = tuple(CellFinding(c.rule, tuple(text(x) for x in c.cell),
                              text(c.value) if isinstance(c.value, str) else c.value,
                              text(c.message)) for c in verdict.cells)
    return RuleVerdict(verdict.rule, verdict.outcome, text(verdict.message), cells,
                       dict(verdict.parameters))


def row_level_failed(result: CheckResult) -> bool:
    """True if ``result`` holds a row-level verdict that did not pass."""
    return any(v.rule == RULE and v.outcome is not Outcome.PASS for v in result.verdicts)
