"""Submitting the release request a notebook wrote: ``release_request.json`` in the project's
outputs area (:mod:`output_control.request_manifest`).

A kernel cannot reach the review workflow, so a notebook states which outputs it asks for, why,
and which rules it asks an exception for; the researcher then submits that file from the
portal. The file is read fail-closed (a symlink, an oversize or malformed file, a name that is
not a regular file of the outputs area: refused with the reason, nothing submitted), and each
exception request becomes the file's own field (the rules and the reason), which controllers
read next to the rules it asks them to waive.
"""

from __future__ import annotations

from dataclasses import dataclass

from access_requests import workflow as projects
from enclave.core import policy
from enclave.core.db import Database
from enclave.core.exceptions import ValidationError
from enclave.core.files import sha256_bytes
from enclave.core.policy import Actor
from enclave.core.settings import Settings
from output_control.exceptions import OutputControlError
from output_control.files import read_limited
from output_control.request_manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    ReleaseRequest,
    parse_request_manifest,
)
from output_control.review.workflow import ExceptionLike, outputs_dir, submit_request


@dataclass(frozen=True)
class PendingManifest:
    """A project's ``release_request.json`` as the researcher's page shows it: the parsed
    request, or why it cannot be submitted."""

    project_id: str
    title: str
    request: ReleaseRequest | None
    problem: str


def _read(settings: Settings, project_id: str) -> tuple[ReleaseRequest, bytes]:
    """The parsed request file and its bytes (read once, so the hash audited is of what was
    parsed); the files it names are checked by the submission itself."""
    try:
        data = read_limited(outputs_dir(settings, project_id) / MANIFEST_NAME,
                            MAX_MANIFEST_BYTES, "release request")
        return parse_request_manifest(data), data
    except OutputControlError as exc:
        raise ValidationError(f"{MANIFEST_NAME} cannot be submitted: {exc}") from None


def submit_manifest(db: Database, settings: Settings, actor: Actor, project_id: str) -> str:
    """Submit the project's ``release_request.json`` as an output request; returns its id.

    The person is checked before the file is read (a non-member learns nothing of the outputs
    area); :func:`~output_control.review.workflow.submit_request` then checks everything again
    in its own transaction, freezes the files and charges any DP result.
    """
    with db.sessions() as session:
        facts = projects.facts(session, project_id)
        policy.check_request_output(actor, facts["members"], facts["agreed"], facts["active"])
    manifest, raw = _read(settings, project_id)
    files, justification = ({f.name: f.justification for f in manifest.files},
                            manifest.justification)
    exceptions: dict[str, ExceptionLike] = {f.name: f.exception for f in manifest.files
                                            if f.exception is not None}
    return submit_request(db, settings, actor, project_id, files, justification, exceptions,
                          origin={"manifest": MANIFEST_NAME, "manifest_sha256": sha256_bytes(raw)})


def pending_manifests(db: Database, settings: Settings, actor: Actor) -> list[PendingManifest]:
    """The request files waiting in the outputs areas of the projects where ``actor`` may ask
    for outputs (active, agreed, accredited member), each parsed or with its problem."""
    with db.sessions() as session:
        mine = []
        for project in projects.projects_of(session, actor):
            facts = projects.facts(session, project.id)
            if policy.can_request_output(actor, facts["members"], facts["agreed"],
                                         facts["active"]):
                mine.append((project.id, project.title))
    found = []
    for project_id, title in mine:
        path = outputs_dir(settings, project_id) / MANIFEST_NAME
        if not path.exists() and not path.is_symlink():
            continue
        try:
            found.append(PendingManifest(project_id, title, _read(settings, project_id)[0], ""))
        except ValidationError as exc:
            found.append(PendingManifest(project_id, title, None, str(exc)))
    return found
