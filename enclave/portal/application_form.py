"""Reading the application form: typed strings to the workflow's values, errors by field.

Only the *shape* is checked here (a date that is not a date, a year that is not a number, a
member line without a name): every rule about the content (lengths, markup-free control
characters, unknown or directly identifying variables, end date in the past, accreditation,
PDF checks) is the access workflow's, whose refusals
(:class:`~access_requests.exceptions.FieldErrors`, each naming its field) are all shown next
to the fields they name (:func:`errors_by_field`), together with the refusals of shape. A
form with errors stores nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from access_requests.applications import ApplicationForm, LegalBasis, MemberEntry
from access_requests.exceptions import FieldError
from access_requests.validation import LEVELS

#: The text fields of the form, in the order they are shown, with their maximum length in the
#: browser (the workflow's limits; longer values are still sent and refused by the workflow).
TEXT_FIELDS = {"title": 300, "summary": 5000, "scientific_purpose": 10_000,
               "public_interest": 5000, "legal_basis_other": 2000, "pi_institution": 200,
               "ethics_reference": 200, "planned_outputs": 5000}
#: How much of a typed value is kept to show it back (a refused value is never stored).
ECHO_LIMIT = 20_000
_YEAR = re.compile(r"\d{4}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_VAR = re.compile(r"^var:([A-Za-z0-9_.-]{1,100}):([A-Za-z0-9_.-]{1,100})$")
SEPARATORS = re.compile(r"[,;\s]+")


@dataclass
class ParsedApplication:
    """The form as typed (to show it back), the errors by field, and the workflow's form."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field -> message (reason)
    form: ApplicationForm | None = None
    protocol: bytes | None = None
    version: int | None = None
    action: str = "save"

    def error_for(self, name: str) -> str | None:
        """The error shown next to ``name``, if any."""
        return self.errors.get(name)


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value[:ECHO_LIMIT] if isinstance(value, str) else ""


def _split(text: str) -> list[str]:
    return [part for part in SEPARATORS.split(text.strip()) if part]


def parse(form: Mapping[str, Any], *, protocol: bytes | None = None) -> ParsedApplication:
    """Turn the posted form into an :class:`ApplicationForm`, or errors by field.

    ``form`` is the posted multi-dict (checkboxes as ``var:<dataset>:<variable>`` with their
    justification in ``why:<dataset>:<variable>``; ``levels`` may repeat); ``protocol`` is the
    uploaded file's bytes, if a file was chosen.
    """
    out = ParsedApplication(protocol=protocol)
    for name in TEXT_FIELDS:
        out.values[name] = _text(form, name)
    basis = _text(form, "legal_basis") or LegalBasis.PUBLIC_INTEREST_RESEARCH.value
    out.values["legal_basis"] = basis[:40]
    action = _text(form, "action")
    out.action = action if action in ("save", "submit") else "save"
    version = _text(form, "version")
    if version:
        if version.isdigit() and len(version) < 10:
            out.version = int(version)
        else:
            out.errors["version"] = "the application's version is missing or malformed"

    raw_end = _text(form, "end_date").strip()
    out.values["end_date"] = raw_end[:20]
    end_date: date | None = None
    if not _DATE.fullmatch(raw_end):
        out.errors["end_date"] = "enter a date as YYYY-MM-DD"
    else:
        try:
            end_date = date.fromisoformat(raw_end)
        except ValueError:
            out.errors["end_date"] = "enter a date as YYYY-MM-DD"

    raw_years = _text(form, "years")
    out.values["years"] = raw_years[:500]
    years: list[int] = []
    for part in _split(raw_years):
        if not _YEAR.fullmatch(part):
            out.errors["years"] = f"{part[:20]!r} is not a year (four digits)"
            break
        years.append(int(part))
    getlist = getattr(form, "getlist", None)
    levels = [v for v in (getlist("levels") if getlist else form.get("levels") or [])
              if isinstance(v, str)][:len(LEVELS) + 5]
    out.values["levels"] = levels
    raw_territories = _text(form, "territories")
    out.values["territories"] = raw_territories[:2000]
    territories = [t.strip() for t in raw_territories.split(",") if t.strip()]

    raw_members = _text(form, "members")
    out.values["members"] = raw_members[:5000]
    members: list[MemberEntry] = []
    for line in raw_members.splitlines():
        if not line.strip():
            continue
        name, _, institution = line.partition(";")
        if not name.strip():
            out.errors["members"] = "each line is 'username; institution'"
            break
        members.append(MemberEntry(name.strip(), institution.strip()))

    variables: dict[str, list[tuple[str, str]]] = {}
    chosen: list[str] = []
    justifications: dict[str, str] = {}
    for key in form:
        if not isinstance(key, str):
            continue
        if key.startswith("why:"):
            justifications[key] = _text(form, key)
            continue
        match = _VAR.match(key)
        if key.startswith("var:") and match is None:
            out.errors["variables"] = f"{key[4:60]!r} is not a dataset and variable name"
            continue
        if match is not None:
            chosen.append(key)
            variables.setdefault(match.group(1), []).append(
                (match.group(2), _text(form, "why:" + key[4:])))
    out.values["chosen"] = chosen
    out.values["why"] = {k[4:]: v for k, v in justifications.items()}
    # built even when the shape is wrong somewhere, so that the workflow can still check the
    # other fields and every refusal is shown at once (an unreadable date is passed as None)
    out.form = ApplicationForm(
        title=out.values["title"], summary=out.values["summary"], end_date=end_date,
        variables=variables, members=members, pi_institution=out.values["pi_institution"],
        scientific_purpose=out.values["scientific_purpose"],
        public_interest=out.values["public_interest"], legal_basis=basis,
        legal_basis_other=out.values["legal_basis_other"], years=years, levels=levels,
        territories=territories, ethics_reference=out.values["ethics_reference"],
        planned_outputs=out.values["planned_outputs"])
    return out


def errors_by_field(error: FieldError, *, shown_at: Callable[[str], str] | None = None,
                    already: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every refusal of ``error`` (a :class:`FieldErrors` holds several) by the form field
    where it is shown, added to ``already`` (the edge's own refusals of shape, which win for
    their field); several refusals of one field are shown together."""
    out = dict(already or {})
    for one in error.errors:
        name = (shown_at or field_of)(one.field)
        if already is not None and name in already:
            continue
        out[name] = f"{out[name]}; {one.reason}" if name in out else one.reason
    return out


def field_of(workflow_field: str) -> str:
    """The form field where the workflow's refusal of ``workflow_field`` is shown.

    A justification refused for ``variables.<dataset>.<variable>`` is shown next to that
    variable's justification box.
    """
    if workflow_field.startswith("variables."):
        dataset, _, variable = workflow_field.removeprefix("variables.").partition(".")
        return f"why:{dataset}:{variable}"
    return workflow_field


def values_of(view: Any) -> dict[str, Any]:
    """The form's values for an existing application (a :class:`ProjectView`), to edit it."""
    project = view.project
    population = view.population or {}
    values: dict[str, Any] = {name: getattr(project, name, "") or "" for name in TEXT_FIELDS}
    pi = next((m for m in view.members if m.username == project.principal_investigator), None)
    values["pi_institution"] = pi.institution if pi else ""
    values["legal_basis"] = project.legal_basis
    values["end_date"] = project.end_date.isoformat()
    values["years"] = ", ".join(str(y) for y in population.get("years", []))
    values["levels"] = list(population.get("levels", []))
    values["territories"] = ", ".join(population.get("territories", []))
    values["members"] = "\n".join(f"{m.username}; {m.institution}" for m in view.members
                                  if m.username != project.principal_investigator)
    values["chosen"] = [f"var:{v.dataset_id}:{v.variable}" for v in view.variables]
    values["why"] = {f"{v.dataset_id}:{v.variable}": v.justification for v in view.variables}
    return values
