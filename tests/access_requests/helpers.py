"""Small builders shared by the access workflow tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from access_requests import applications, decisions
from access_requests.machine import ProjectStatus
from tests.workflows.factories import Factory

#: A complete application using only quasi-identifiers of a pupil-level dataset.
FORM: dict[str, Any] = {
    "title": "Parcours scolaires et origine sociale",
    "summary": "Étude des parcours du CM2 à la 6e.",
    "end_date": date.today() + timedelta(days=200),
    "variables": {"eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Par niveau")]},
    "members": ["bruno"],
    "scientific_purpose": "Mesurer les écarts de réussite à l'entrée au collège.",
    "public_interest": "Éclairer la politique d'éducation prioritaire.",
    "years": [2024, 2025],
    "levels": ["CM2", "6E"],
    "territories": ["Académie de Lille", "59"],
    "ethics_reference": "CER-2026-014",
    "planned_outputs": "Tableaux agrégés, modèles de régression.",
}
#: Variables that make the review enhanced (two staff and an ethics opinion).
SENSITIVE = {"eleves": [("sexe", "Écarts"), ("boursier", "Effet des bourses")]}
TRACES = {"traces_xapi": [("verbe", "Type d'activité"), ("duree_s", "Temps passé")]}


def make_pdf(extra: bytes = b"") -> bytes:
    """A minimal, valid one-page PDF with a correct cross-reference table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] " + extra + b">>"]
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return out


def create(factory: Factory, by: str = "alice", **changes: Any) -> str:
    """A draft application by ``by`` with :data:`FORM` (and ``changes``)."""
    with factory.enclave.db.transaction() as session:
        project = applications.create_application(
            session, factory.actor(by), projects_dir=factory.enclave.settings.projects_dir,
            **{**FORM, **changes})
        return project.id


def version(factory: Factory, project_id: str) -> int:
    """The project's committed version."""
    return factory.project_row(project_id)[1]


def in_review(factory: Factory, by: str = "alice", **changes: Any) -> str:
    """An application submitted by ``by`` and taken into review by claire."""
    project_id = create(factory, by, **changes)
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor(by), project_id,
                            version=version(factory, project_id))
    with factory.enclave.db.transaction() as session:
        decisions.start_review(session, factory.actor("claire"), project_id,
                               version=version(factory, project_id))
    assert factory.project_row(project_id)[0] == ProjectStatus.IN_REVIEW
    return project_id
