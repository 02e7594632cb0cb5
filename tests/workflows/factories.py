"""Builders for workflow tests: people, projects, extracts and output requests at any status.

Every object is made by calling the real workflow functions (as airlock's ``tests/factories.py``
does), so a status reached here is a status the enclave can really reach; a status no transition
reaches raises instead of being forced into the database. The one shortcut: output requests are
withdrawn through their state machine's move, as no workflow function withdraws them yet.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from access_requests import agreements
from access_requests import workflow as projects
from access_requests.workflow import PROJECT_MACHINE, ProjectStatus
from enclave import demo
from enclave.core import audit, catalogue, people, policy, statemachine
from enclave.core.context import Enclave
from enclave.core.policy import Actor, Role
from enclave.provisioning.extracts import (
    BuiltExtract,
    build_extract,
    current_extract,
    try_activate,
)
from output_control.checked import crosstab
from output_control.review import workflow as outputs
from output_control.review.models import OutputRequest
from output_control.review.workflow import Decision, RequestStatus


@dataclass(frozen=True)
class Person:
    """A test account: its roles and whether its training is recorded (safe people)."""

    username: str
    roles: tuple[Role, ...]
    accredited: bool = True


#: Everyone the workflow tests need. Members of the default project: alice (principal
#: investigator), bruno, dora (DEPP staff) and oscar (a disclosure controller who is also a
#: researcher); everyone else is an outsider to it.
PEOPLE = (
    Person("alice", (Role.RESEARCHER,)),
    Person("bruno", (Role.RESEARCHER,)),
    Person("rita", (Role.RESEARCHER,)),
    Person("nadia", (Role.RESEARCHER,), accredited=False),
    Person("claire", (Role.DEPP_STAFF,), accredited=False),
    Person("david", (Role.DEPP_STAFF,), accredited=False),
    Person("dora", (Role.DEPP_STAFF,), accredited=False),
    Person("emma", (Role.OUTPUT_CHECKER,), accredited=False),
    Person("farid", (Role.OUTPUT_CHECKER,), accredited=False),
    Person("hugo", (Role.OUTPUT_CHECKER,), accredited=False),
    Person("oscar", (Role.OUTPUT_CHECKER, Role.RESEARCHER)),
    Person("gaelle", (Role.ETHICS_COMMITTEE,), accredited=False),
    Person("admin", (Role.PLATFORM_ADMIN,), accredited=False),
)
PI = "alice"
MEMBERS = ("bruno", "dora", "oscar")
STAFF = "claire"
CONTROLLERS = ("emma", "farid")

VARIABLES: dict[str, list[tuple[str, str]]] = {
    "eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Analyse par niveau")],
}
OUTPUT_NAME = "niveau_par_sexe.csv"
PUPILS = 200
#: A day after every factory project's end date (they end a year from today).
AFTER_END_DATES = date.today() + timedelta(days=400)
TRACES_PER_PUPIL = 2.0


def generate_raw_zone(folder: Path, seed: int = 20261128) -> Path:
    """Write the small synthetic raw zone the factories copy into each enclave."""
    from enclave.demo_data import generate

    generate(folder, pupils=PUPILS, seed=seed, traces_per_pupil=TRACES_PER_PUPIL)
    return folder


def _paths_from_draft() -> dict[ProjectStatus, list[Any]]:
    """The shortest sequence of transitions from draft to each reachable status."""
    paths: dict[ProjectStatus, list[Any]] = {ProjectStatus.DRAFT: []}
    queue = deque([ProjectStatus.DRAFT])
    while queue:
        here = queue.popleft()
        for move in PROJECT_MACHINE.transitions:
            if move.source == here and move.target not in paths:
                paths[move.target] = [*paths[here], move]
                queue.append(move.target)
    return paths


PROJECT_PATHS = _paths_from_draft()


def pupils_frame(per_cell: int = 12) -> pd.DataFrame:
    """A small event table (sexe x niveau, ``per_cell`` distinct pupils each, two rows each)."""
    records = [{"sexe": sexe, "niveau": niveau, "eleve": f"{sexe}{niveau}{i:03d}"}
               for sexe in ("F", "M") for niveau in ("CM2", "6E")
               for i in range(per_cell) for _ in range(2)]
    return pd.DataFrame.from_records(records, columns=["sexe", "niveau", "eleve"])


@dataclass
class Factory:
    """Builds workflow objects in one enclave through its workflow functions."""

    enclave: Enclave
    _actors: dict[str, Actor] = field(default_factory=dict)

    # -- people and data ---------------------------------------------------------------------
    def setup(self, raw_zone: Path | None = None) -> Factory:
        """Create :data:`PEOPLE` and a small synthetic raw zone, then load its catalogue.

        ``raw_zone`` is a folder written once by :func:`generate_raw_zone` and copied here
        (generating it again for every test would dominate the run time); without it the data
        are generated in place by the demo's own command.
        """
        self.create_people(PEOPLE)
        if raw_zone is None:
            demo.generate_demo_data(self.enclave, pupils=PUPILS,
                                    traces_per_pupil=TRACES_PER_PUPIL)
            return self
        raw_dir = self.enclave.settings.raw_dir
        for dataset in sorted(p for p in raw_zone.iterdir() if p.is_dir()):
            shutil.copytree(dataset, raw_dir / dataset.name)
        with self.enclave.db.transaction() as session:
            catalogue.load_catalogue(session, policy.SYSTEM, raw_dir)
        return self

    def create_people(self, persons: Iterable[Person]) -> None:
        """Accounts (no password: scrypt is slow and not under test here) and trainings."""
        with self.enclave.db.transaction() as session:
            for person in persons:
                people.create_user(session, policy.SYSTEM, person.username,
                                   person.username.title(), roles=person.roles)
                if person.accredited:
                    people.record_accreditation(session, policy.SYSTEM, person.username,
                                                date.today() - timedelta(days=30))

    def actor(self, username: str) -> Actor:
        """The policy's view of ``username`` now (``system`` is the enclave itself)."""
        if username == policy.SYSTEM.username:
            return policy.SYSTEM
        if username not in self._actors:
            with self.enclave.db.sessions() as session:
                self._actors[username] = people.actor_for(session, username)
        return self._actors[username]

    def actor_on(self, username: str, day: date) -> Actor:
        """The policy's view of ``username`` on ``day`` (e.g. once their training expired)."""
        with self.enclave.db.sessions() as session:
            return people.actor_for(session, username, day)

    # -- projects ----------------------------------------------------------------------------
    def application(self, *, pi: str = PI, members: Iterable[str] = MEMBERS,
                    variables: Mapping[str, Iterable[tuple[str, str]]] | None = None,
                    title: str = "Réussite selon le niveau et le sexe") -> str:
        """A draft application by ``pi``."""
        with self.enclave.db.transaction() as session:
            project = projects.create_application(
                session, self.actor(pi), title=title, summary="Projet de test.",
                end_date=date.today() + timedelta(days=365),
                variables=variables or VARIABLES, members=list(members))
            return project.id

    def project(self, status: ProjectStatus = ProjectStatus.DRAFT, *, ready: bool = False,
                pi: str = PI, members: Iterable[str] = MEMBERS,
                variables: Mapping[str, Iterable[tuple[str, str]]] | None = None) -> str:
        """A project at ``status``, moved there along the machine's shortest path.

        Each step is :func:`access_requests.workflow.transition` by the step's role (the
        principal investigator, claire for DEPP staff, the system), except activation, which
        is :func:`~enclave.provisioning.extracts.try_activate` once the project is ready.
        ``ready`` (for an approved project) also builds its extract and has every member
        accept the agreement, so that the system may activate it.
        """
        if status not in PROJECT_PATHS:
            raise ValueError(f"no transition of PROJECT_MACHINE reaches {status.value}")
        project_id = self.application(pi=pi, members=members, variables=variables)
        for move in PROJECT_PATHS[status]:
            if move.target == ProjectStatus.ACTIVE and move.source == ProjectStatus.APPROVED:
                self.make_ready(project_id)
                if not try_activate(self.enclave.db, project_id):
                    raise AssertionError(f"{project_id} could not be activated")
                continue
            mover = {Role.RESEARCHER: pi, Role.DEPP_STAFF: STAFF,
                     Role.SYSTEM: policy.SYSTEM.username}[move.role]
            self.move(project_id, mover, move.target)
        if ready and status == ProjectStatus.APPROVED:
            self.make_ready(project_id)
        return project_id

    def move(self, project_id: str, username: str, target: ProjectStatus,
             **extra: Any) -> None:
        """``username`` asks for ``target`` through the workflow's one generic move."""
        if target == ProjectStatus.EXPIRED:
            extra.setdefault("today", AFTER_END_DATES)  # expiry needs the end date passed
        with self.enclave.db.transaction() as session:
            projects.transition(session, self.actor(username), project_id, target,
                                reason="Motif de test", keys=self.enclave.keys, **extra)

    def make_ready(self, project_id: str) -> None:
        """Build the first extract if there is none and have every member accept the agreement."""
        if current_extract(self.enclave.db, project_id) is None:
            self.extract(project_id)
        for username in self.members(project_id):
            self.agree(project_id, username)

    def agree(self, project_id: str, username: str) -> None:
        """``username`` accepts the current data-use agreement."""
        with self.enclave.db.transaction() as session:
            projects.accept_agreement(session, self.actor(username), project_id)

    def publish_agreement(self, version: str = "DUA-2026.2") -> None:
        """DEPP staff publish a new agreement version: every member must accept it again."""
        with self.enclave.db.transaction() as session:
            agreements.publish_agreement(
                session, self.actor(STAFF), version, "Convention d'utilisation des données",
                "Texte révisé de la convention d'utilisation des données de la DEPP.")

    def members(self, project_id: str) -> list[str]:
        """Usernames of the project's members."""
        with self.enclave.db.sessions() as session:
            return [m.username for m in projects.members_of(session, project_id)]

    def project_row(self, project_id: str) -> tuple[str, int]:
        """The project's (status, version) as committed."""
        with self.enclave.db.sessions() as session:
            project = projects.get_project(session, project_id)
            return project.status, project.version

    # -- extracts ----------------------------------------------------------------------------
    def extract(self, project_id: str, by: str = STAFF) -> BuiltExtract:
        """Build the next extract version of an approved or active project."""
        return build_extract(self.enclave.db, self.enclave.settings, self.enclave.keys,
                             self.actor(by), project_id)

    # -- outputs -----------------------------------------------------------------------------
    def outputs_dir(self, project_id: str) -> Path:
        """The project's outputs folder (where its workspaces write)."""
        return outputs.outputs_dir(self.enclave.settings, project_id)

    def output_file(self, project_id: str, name: str = OUTPUT_NAME, per_cell: int = 12) -> str:
        """Write a checked table and its sidecar into the outputs, as the notebook does."""
        crosstab(pupils_frame(per_cell), "sexe", "niveau", name=name.removesuffix(".csv"),
                 outputs_dir=self.outputs_dir(project_id))
        return name

    def active_project(self) -> str:
        """An active project (extract built, every member agreed)."""
        return self.project(ProjectStatus.ACTIVE)

    def output_request(self, status: RequestStatus = RequestStatus.SUBMITTED, *,
                       project_id: str | None = None, requester: str = PI,
                       names: Iterable[str] = (OUTPUT_NAME,)) -> str:
        """An output request at ``status``: submitted, then reviewed, settled or released."""
        project_id = project_id or self.active_project()
        names = list(names)
        for name in names:
            if not (self.outputs_dir(project_id) / name).exists():
                self.output_file(project_id, name)
        request_id = outputs.submit_request(
            self.enclave.db, self.enclave.settings, self.actor(requester), project_id,
            {name: "Tableau descriptif" for name in names})
        if status == RequestStatus.SUBMITTED:
            return request_id
        if status == RequestStatus.WITHDRAWN:
            # No workflow function withdraws a request yet: drive REQUEST_MACHINE's move.
            with self.enclave.db.transaction() as session:
                request = session.get(OutputRequest, request_id)
                assert request is not None
                statemachine.move(session, self.actor(requester), outputs.REQUEST_MACHINE,
                                  request, RequestStatus.WITHDRAWN,
                                  facts=projects.facts(session, project_id))
            return request_id
        first, second = CONTROLLERS
        self.vote(request_id, first, Decision.APPROVE, names)
        if status == RequestStatus.REJECTED:
            self.vote(request_id, second, Decision.REJECT, names)
            return request_id
        self.vote(request_id, second, Decision.APPROVE, names)
        if status == RequestStatus.RELEASED:
            outputs.release(self.enclave.db, self.enclave.settings, self.enclave.keys.signer(),
                            self.actor(first), request_id)
        return request_id

    def vote(self, request_id: str, reviewer: str, decision: Decision,
             names: Iterable[str] = (OUTPUT_NAME,)) -> outputs.ApprovalState:
        """``reviewer`` votes ``decision`` on every named file (with a comment)."""
        names = list(names)
        return outputs.review(self.enclave.db, self.actor(reviewer), request_id,
                              dict.fromkeys(names, decision),
                              dict.fromkeys(names, "Commentaire du contrôleur"))

    # -- observations ------------------------------------------------------------------------
    def audit_count(self, action: str | None = None) -> int:
        """How many audit events there are (of ``action``, if given)."""
        query = select(func.count()).select_from(audit.AuditEvent)
        if action is not None:
            query = query.where(audit.AuditEvent.action == action)
        with self.enclave.db.sessions() as session:
            return int(session.execute(query).scalar_one())

    def audit_events_after(self, seq: int) -> list[audit.AuditEvent]:
        """The events appended after sequence number ``seq``, in order."""
        with self.enclave.db.sessions() as session:
            return list(session.execute(select(audit.AuditEvent)
                                        .where(audit.AuditEvent.seq > seq)
                                        .order_by(audit.AuditEvent.seq)).scalars())

    def audit_head(self) -> int:
        """The last sequence number of the chain."""
        with self.enclave.db.sessions() as session:
            return audit.head(session)[0]
