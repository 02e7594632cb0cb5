"""Applications: the researcher's form, its checks, drafts, edits and submission.

Everything is checked before anything is written: a refused form leaves no row, no file and
no audit event, and every refused field is reported at once (:class:`FieldErrors`, each naming
its field), so that the researcher corrects them all in one round trip. The optional PDF
protocol is stored outside the database under ``projects/<p>/protocol/<sha256>.pdf``, written
atomically and published by the project row that records its SHA-256; a rolled-back
transaction removes the file it wrote.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass
from dataclasses import fields as fields_of
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from access_requests import validation
from access_requests.exceptions import AlreadySubmitted, FieldError
from access_requests.files import on_outcome
from access_requests.machine import ProjectStatus, get_project, members_of
from access_requests.models import Membership, Project, RequestedVariable
from access_requests.moves import advance, check_version, locked_project
from enclave.core import audit, people, policy
from enclave.core.catalogue import Dataset, Variable, VariableKind
from enclave.core.db import utcnow
from enclave.core.exceptions import NotFound, PermissionDenied
from enclave.core.files import sha256_bytes, write_atomic
from enclave.core.policy import Actor, Role

MAX_MEMBERS = 50
MAX_VARIABLES = 500
EDITABLE = frozenset({ProjectStatus.DRAFT, ProjectStatus.CHANGES_REQUESTED})
WAITING_FOR_REVIEW = frozenset({ProjectStatus.SUBMITTED, ProjectStatus.RESUBMITTED,
                                ProjectStatus.IN_REVIEW})


class LegalBasis(StrEnum):
    """The GDPR basis of the processing: public-interest research, or another stated one."""

    PUBLIC_INTEREST_RESEARCH = "gdpr_6_1_e_art_89"  # art. 6(1)(e) with art. 89 safeguards
    OTHER = "other"


@dataclass(frozen=True)
class MemberEntry:
    """A member named in an application, with the institution they work for on it."""

    username: str
    institution: str = ""


@dataclass(frozen=True)
class ApplicationForm:
    """What a researcher fills in; ``variables`` is ``{dataset: [(variable, justification)]}``.

    Drafts may leave the free-text parts empty; :func:`submit` checks what a submitted
    application needs (see :data:`REQUIRED_AT_SUBMIT`).
    """

    title: str
    summary: str
    end_date: date | None  # None: not given (or unreadable at the edge), refused
    variables: Mapping[str, Iterable[tuple[str, str]]]
    members: Iterable[str | MemberEntry] = ()
    pi_institution: str = ""
    scientific_purpose: str = ""
    public_interest: str = ""
    legal_basis: str = LegalBasis.PUBLIC_INTEREST_RESEARCH.value
    legal_basis_other: str = ""
    years: Iterable[int] = ()
    levels: Iterable[str] = ()
    territories: Iterable[str] = ()
    ethics_reference: str = ""
    planned_outputs: str = ""


FORM_FIELDS = frozenset(f.name for f in fields_of(ApplicationForm))
#: Fields that must be non-empty for an application to be submitted.
REQUIRED_AT_SUBMIT = ("title", "summary")


@dataclass(frozen=True)
class _Clean:
    title: str
    summary: str
    end_date: date
    variables: list[tuple[str, str, str]]
    members: list[tuple[str, str]]
    values: dict[str, Any]


def _members(session: Session, actor: Actor, form: ApplicationForm,
             today: date) -> list[tuple[str, str]]:
    """The members as (username, institution), the actor (principal investigator) first;
    every refused member is reported (FieldErrors)."""
    entries = [MemberEntry(m) if isinstance(m, str) else m for m in form.members]
    if not all(isinstance(e, MemberEntry) for e in entries):
        raise FieldError("members", "each member is a username or a MemberEntry")
    fields = validation.Collector()
    pi_institution = fields.check(validation.text, "pi_institution", form.pi_institution,
                                  max_len=200)
    out: dict[str, str] = {actor.username: pi_institution or ""}
    for entry in entries:
        name = fields.check(validation.text, "members", entry.username, max_len=100,
                            min_len=1)
        institution = fields.check(validation.text, "members", entry.institution, max_len=200)
        if name is None or institution is None or name in out:
            continue
        try:
            member = people.actor_for(session, name, today)
            user = people.get_user(session, name)
        except NotFound:
            fields.add("members", f"no person named {name!r} is known to the enclave")
            continue
        if not member.active:
            fields.add("members", f"{name}'s account is not active")
            continue
        if Role.RESEARCHER in member.roles and not member.accredited:
            until = member.accredited_until.isoformat() if member.accredited_until else "never"
            fields.add("members", f"{name} has no valid accreditation (expired or missing: "
                                  f"{until}); they must renew their training")
            continue
        out[name] = institution or user.institution
    if len(out) > MAX_MEMBERS:
        fields.add("members", f"a project has at most {MAX_MEMBERS} members")
    fields.raise_if_any()
    return list(out.items())


def _variables(session: Session, requested: Mapping[str, Iterable[tuple[str, str]]]
               ) -> list[tuple[str, str, str]]:
    """The requested (dataset, variable, justification); every refused variable and every
    refused justification (field ``variables.<dataset>.<variable>``) is reported."""
    if not isinstance(requested, Mapping):
        raise FieldError("variables", "must map each dataset to its (variable, justification)")
    fields = validation.Collector()
    wanted: list[tuple[str, str, str]] = []
    for dataset_id, items in requested.items():
        if not isinstance(dataset_id, str) or session.get(Dataset, dataset_id) is None:
            fields.add("variables", f"unknown dataset {dataset_id!r}")
            continue
        kinds = dict(session.execute(select(Variable.name, Variable.kind)
                                     .where(Variable.dataset_id == dataset_id)).all())
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, tuple | list) or len(item) != 2:
                fields.add("variables", "each variable comes with its justification")
                continue
            name, justification = item
            if name not in kinds:
                fields.add("variables", f"dataset {dataset_id} has no variable {name!r}")
                continue
            if kinds[name] == VariableKind.DIRECT_IDENTIFIER:
                fields.add("variables", f"{dataset_id}.{name} is a direct identifier and can "
                                        "never be requested (data minimisation)")
                continue
            if name in seen:
                fields.add("variables", f"{dataset_id}.{name} is requested twice")
                continue
            seen.add(name)
            why = fields.check(validation.text, f"variables.{dataset_id}.{name}", justification,
                               max_len=2000, min_len=1, multiline=True)
            if why is not None:
                wanted.append((dataset_id, name, why))
    if not wanted and not fields.errors:
        fields.add("variables", "an application must request at least one variable")
    if len(wanted) > MAX_VARIABLES:
        fields.add("variables", f"at most {MAX_VARIABLES} variables per application")
    fields.raise_if_any()
    return wanted


def _legal_basis(value: str) -> LegalBasis:
    try:
        return LegalBasis(value)
    except ValueError:
        raise FieldError("legal_basis", "must be " + " or ".join(b.value for b in LegalBasis)) \
            from None


#: The free-text fields stored as typed: (name, maximum length, several lines).
_FREE_TEXT = (("scientific_purpose", 10_000, True), ("public_interest", 5000, True),
              ("ethics_reference", 200, False), ("planned_outputs", 5000, True))


def _clean(session: Session, actor: Actor, form: ApplicationForm, today: date) -> _Clean:
    """Check every field of the form before anything is written; every refused field is
    reported at once (:class:`FieldErrors`, in the form's order), not only the first."""
    fields = validation.Collector()
    title = fields.check(validation.text, "title", form.title, max_len=300, min_len=3)
    summary = fields.check(validation.text, "summary", form.summary, max_len=5000,
                           multiline=True)
    values: dict[str, Any] = {
        name: fields.check(validation.text, name, getattr(form, name), max_len=limit,
                           multiline=multiline) for name, limit, multiline in _FREE_TEXT}
    basis = fields.check(_legal_basis, form.legal_basis)
    other = fields.check(validation.text, "legal_basis_other", form.legal_basis_other,
                         max_len=2000, multiline=True)
    if basis is LegalBasis.OTHER and other is not None and len(other) < 10:
        fields.add("legal_basis_other", "state the legal basis (at least 10 characters)")
    years = fields.check(validation.years, "years", form.years, today)
    levels = fields.check(validation.levels, "levels", form.levels)
    territories = fields.check(validation.territories, "territories", form.territories)
    end_date = fields.check(validation.future_date, "end_date", form.end_date, today)
    variables = fields.check(_variables, session, form.variables)
    members = fields.check(_members, session, actor, form, today)
    fields.raise_if_any()
    if (title is None or summary is None or end_date is None or variables is None
            or members is None or basis is None or other is None):
        fields.fail()  # not reached: a missing value was refused above
    values["legal_basis"] = basis.value
    values["legal_basis_other"] = other if basis is LegalBasis.OTHER else ""
    values["population"] = json.dumps({"years": years, "levels": levels,
                                       "territories": territories},
                                      ensure_ascii=False, sort_keys=True)
    return _Clean(title, summary, end_date, variables, members, values)


def _checked(session: Session, pi: Actor, form: ApplicationForm, protocol: bytes | None,
             today: date) -> tuple[_Clean, bytes | None]:
    """The whole form and its protocol checked together: every refusal at once."""
    fields = validation.Collector()
    clean = fields.check(_clean, session, pi, form, today)
    checked = fields.check(validation.pdf, "protocol", protocol) if protocol is not None \
        else None
    fields.raise_if_any()
    if clean is None:
        fields.fail()  # not reached: a refused form raised above
    return clean, checked


def _form(form: ApplicationForm | None, given: Mapping[str, Any]) -> ApplicationForm:
    if form is not None:
        if given:
            raise TypeError("pass either an ApplicationForm or its fields, not both")
        return form
    fields = validation.Collector()
    for name in sorted(set(given) - FORM_FIELDS):
        fields.add(name, "is not a field of the application")
    for name in sorted(f.name for f in fields_of(ApplicationForm)
                       if f.name not in given and f.default is MISSING
                       and f.default_factory is MISSING):
        fields.add(name, "is required")
    fields.raise_if_any()
    return ApplicationForm(**given)


def protocol_path(projects_dir: Path, project_id: str, sha256: str) -> Path:
    """Where a project's protocol with this SHA-256 is stored."""
    return projects_dir / project_id / "protocol" / f"{sha256}.pdf"


def _store_protocol(session: Session, project: Project, data: bytes,
                    projects_dir: Path | None) -> str:
    if projects_dir is None:
        raise ValueError("storing a protocol needs projects_dir (settings.projects_dir)")
    digest = sha256_bytes(data)
    path = protocol_path(projects_dir, project.id, digest)
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o440)
    if not existed:
        on_outcome(session, rolled_back=lambda: path.unlink(missing_ok=True))
    project.protocol_sha256, project.protocol_size = digest, len(data)
    return digest


def _write(session: Session, project: Project, clean: _Clean) -> None:
    project.title, project.summary, project.end_date = clean.title, clean.summary, clean.end_date
    for key, value in clean.values.items():
        setattr(project, key, value)
    existing = {m.username: m for m in members_of(session, project.id)}
    wanted = dict(clean.members)
    for name, membership in existing.items():
        if name not in wanted:
            session.delete(membership)
    for name, institution in wanted.items():
        if name in existing:
            existing[name].institution = institution
        else:
            session.add(Membership(project_id=project.id, username=name,
                                   institution=institution,
                                   role_in_project="pi" if name == project.principal_investigator
                                   else "member"))
    session.execute(delete(RequestedVariable).where(RequestedVariable.project_id == project.id))
    for dataset_id, name, justification in clean.variables:
        session.add(RequestedVariable(project_id=project.id, dataset_id=dataset_id,
                                      variable=name, justification=justification))


def _project_id(actor: Actor, form_key: str | None) -> str:
    if form_key is None:
        return "prj-" + secrets.token_hex(4)
    if not isinstance(form_key, str) or not 16 <= len(form_key) <= 100:
        raise FieldError("form_key", "must be the 16 to 100 characters the form was given")
    return "prj-" + sha256_bytes(f"{actor.username}\n{form_key}".encode())[:8]


def create_application(session: Session, actor: Actor, form: ApplicationForm | None = None,
                       *, protocol: bytes | None = None, projects_dir: Path | None = None,
                       today: date | None = None, form_key: str | None = None,
                       **form_fields: Any) -> Project:
    """Create a draft application from ``form`` (or its fields as keywords), audited.

    The actor (an accredited researcher) becomes its principal investigator. Raises
    ``PermissionDenied`` or a ``FieldError`` naming the refused field, storing nothing.
    ``form_key`` (a random value the form carries) makes sending the same form twice (a
    double click, a replay) raise :class:`AlreadySubmitted` naming the project the first
    sending created, instead of creating a second application.
    """
    policy.check_apply_for_project(actor)
    project_id = _project_id(actor, form_key)
    if form_key is not None and session.get(Project, project_id) is not None:
        error = AlreadySubmitted(f"this form was already sent: it created project {project_id}; "
                                 "nothing was changed")
        error.project_id = project_id
        raise error
    today = today or date.today()
    clean, protocol = _checked(session, actor, _form(form, form_fields), protocol, today)
    project = Project(id=project_id, title=clean.title,
                      summary=clean.summary, status=ProjectStatus.DRAFT.value, version=1,
                      principal_investigator=actor.username, end_date=clean.end_date,
                      created_at=utcnow(), review_round=0)
    session.add(project)
    session.flush()
    _write(session, project, clean)
    session.flush()
    digest = _store_protocol(session, project, protocol, projects_dir) \
        if protocol is not None else None
    audit.record(session, actor=actor.username, action="project.created", object_type="project",
                 object_id=project.id, project_id=project.id,
                 details={"title": clean.title,
                          "variables": [f"{d}.{v}" for d, v, _ in clean.variables],
                          "members": [m for m, _ in clean.members],
                          **({"protocol_sha256": digest} if digest else {})})
    return project


def update_application(session: Session, actor: Actor, project_id: str,
                       form: ApplicationForm | None = None, *, version: int,
                       protocol: bytes | None = None, projects_dir: Path | None = None,
                       today: date | None = None, **form_fields: Any) -> Project:
    """Replace a draft's (or a returned application's) content; ``version`` is the one the
    researcher edited, refused if the application changed meanwhile."""
    project = locked_project(session, project_id)
    policy.check_edit_application(actor, [m.username for m in members_of(session, project_id)])
    if project.status not in EDITABLE:
        raise PermissionDenied(f"the application is {project.status}; it can be edited only as "
                               "a draft or when DEPP staff asked for changes")
    check_version(f"project {project_id}", project.version, version)
    today = today or date.today()
    pi = people.actor_for(session, project.principal_investigator, today)
    clean, protocol = _checked(session, pi, _form(form, form_fields), protocol, today)
    _write(session, project, clean)
    project.version += 1
    session.flush()
    digest = _store_protocol(session, project, protocol, projects_dir) \
        if protocol is not None else None
    audit.record(session, actor=actor.username, action="project.updated", object_type="project",
                 object_id=project_id, project_id=project_id,
                 details={"title": clean.title, "version": project.version,
                          "variables": [f"{d}.{v}" for d, v, _ in clean.variables],
                          "members": [m for m, _ in clean.members],
                          **({"protocol_sha256": digest} if digest else {})})
    return project


def attach_protocol(session: Session, actor: Actor, project_id: str, protocol: bytes, *,
                    version: int, projects_dir: Path) -> Project:
    """Attach (or replace) the PDF protocol of a draft or returned application, audited.

    The same checks as the form's upload (member, editable state, the version the researcher
    saw, a plausible passive PDF); the file is stored outside the database with its SHA-256.
    """
    project = locked_project(session, project_id)
    policy.check_edit_application(actor, [m.username for m in members_of(session, project_id)])
    if project.status not in EDITABLE:
        raise PermissionDenied(f"the application is {project.status}; it can be edited only as "
                               "a draft or when DEPP staff asked for changes")
    check_version(f"project {project_id}", project.version, version)
    data = validation.pdf("protocol", protocol)
    project.version += 1
    digest = _store_protocol(session, project, data, projects_dir)
    audit.record(session, actor=actor.username, action="project.protocol_attached",
                 object_type="project", object_id=project_id, project_id=project_id,
                 details={"protocol_sha256": digest, "size": len(data),
                          "version": project.version})
    return project


def check_application(session: Session, actor: Actor, form: ApplicationForm, *,
                      project_id: str | None = None, protocol: bytes | None = None,
                      today: date | None = None) -> None:
    """Check a whole form as :func:`create_application` (or, with ``project_id``,
    :func:`update_application`) would, writing nothing: raise :class:`FieldErrors` naming
    every refused field, or return. An edge whose own reading of a form already found errors
    of shape calls it to show the content's refusals in the same round trip."""
    today = today or date.today()
    if project_id is None:
        policy.check_apply_for_project(actor)
        pi = actor
    else:
        project = get_project(session, project_id)
        policy.check_edit_application(actor, [m.username for m in members_of(session,
                                                                            project_id)])
        pi = people.actor_for(session, project.principal_investigator, today)
    _checked(session, pi, form, protocol, today)


def submit(session: Session, actor: Actor, project_id: str, *, version: int | None = None,
           today: date | None = None) -> Project:
    """Submit a draft, or resubmit an application returned for changes.

    A second submission of the same application raises :class:`AlreadySubmitted` and
    changes nothing (no status change, no audit event, no notification).
    """
    project = locked_project(session, project_id)
    members = [m.username for m in members_of(session, project_id)]
    policy.check_view_project(actor, members)
    if project.status in WAITING_FOR_REVIEW:
        raise AlreadySubmitted(f"project {project_id} was already submitted (it is "
                               f"{project.status}); nothing was changed")
    check_version(f"project {project_id}", project.version, version)
    today = today or date.today()
    fields = validation.Collector()
    for name in REQUIRED_AT_SUBMIT:
        if not str(getattr(project, name)).strip():
            fields.add(name, "is required to submit the application")
    if project.end_date <= today:
        fields.add("end_date", f"the requested end date {project.end_date.isoformat()} has "
                               "passed; edit the application first")
    fields.raise_if_any()
    target = ProjectStatus.RESUBMITTED if project.status == ProjectStatus.CHANGES_REQUESTED \
        else ProjectStatus.SUBMITTED
    advance(session, actor, project, target, extra_facts={"today": today})
    return project
