"""The embedded demo: demo accounts, synthetic data, and the walking skeleton end to end.

Every step of :func:`walking_skeleton` is one call into a workflow module; this file only
strings them together, as a person would through the portal.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from access_requests import workflow as projects
from access_requests.workflow import ProjectStatus
from enclave.core import catalogue, people, policy
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound, SettingsError
from enclave.core.files import write_atomic
from enclave.core.policy import Role
from enclave.core.settings import Mode

DEMO_ACCOUNTS_FILE = "demo-accounts.json"


@dataclass(frozen=True)
class DemoPerson:
    """A demo account: who they are and what they do in the demo."""

    username: str
    display_name: str
    institution: str
    roles: tuple[Role, ...]
    accredited: bool = False


DEMO_PEOPLE = (
    DemoPerson("alice", "Alice Martin", "Université de Lille", (Role.RESEARCHER,), True),
    DemoPerson("bruno", "Bruno Petit", "Sciences Po", (Role.RESEARCHER,), True),
    DemoPerson("claire", "Claire Durand", "DEPP", (Role.DEPP_STAFF,)),
    DemoPerson("david", "David Moreau", "DEPP", (Role.DEPP_STAFF,)),
    DemoPerson("emma", "Emma Lefèvre", "DEPP, contrôle des sorties", (Role.OUTPUT_CHECKER,)),
    DemoPerson("farid", "Farid Haddad", "DEPP, contrôle des sorties", (Role.OUTPUT_CHECKER,)),
    DemoPerson("gaelle", "Gaëlle Bernard", "Comité d'éthique", (Role.ETHICS_COMMITTEE,)),
    DemoPerson("admin", "Administration de la plateforme", "DEPP", (Role.PLATFORM_ADMIN,)),
)


def _accounts_path(enclave: Enclave) -> Path:
    return enclave.settings.keys_dir / DEMO_ACCOUNTS_FILE


def demo_passwords(enclave: Enclave) -> dict[str, str]:
    """The demo accounts' generated passwords (kept 0600 beside the demo keys)."""
    path = _accounts_path(enclave)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def ensure_demo_accounts(enclave: Enclave) -> list[str]:
    """Create the demo accounts once, with passwords generated now; never in production."""
    if enclave.settings.mode is not Mode.DEMO:
        raise SettingsError("demo accounts exist only in demo mode")
    passwords = demo_passwords(enclave)
    created = []
    with enclave.db.transaction() as session:
        for person in DEMO_PEOPLE:
            try:
                people.get_user(session, person.username)
                continue
            except NotFound:
                pass
            password = passwords.get(person.username) or secrets.token_urlsafe(9)
            passwords[person.username] = password
            people.create_user(session, policy.SYSTEM, person.username, person.display_name,
                               institution=person.institution, roles=person.roles,
                               password=password, email=f"{person.username}@demo.invalid")
            if person.accredited:
                people.record_accreditation(session, policy.SYSTEM, person.username,
                                            date.today() - timedelta(days=30),
                                            reference="Formation CASD/DEPP (démo)")
            created.append(person.username)
        write_atomic(_accounts_path(enclave), json.dumps(passwords, indent=1).encode(),
                     mode=0o600)
    return [f"demo account created: {name}" for name in created]


def describe_demo_accounts(enclave: Enclave) -> list[str]:
    """Lines listing each demo account, its roles and its password (demo only)."""
    passwords = demo_passwords(enclave)
    return [f"  {p.username:<8} {passwords.get(p.username, '?'):<14} "
            f"{', '.join(r.value for r in p.roles)}" for p in DEMO_PEOPLE]


def welcome_banner(enclave: Enclave) -> str:
    """What ``make run`` prints once the hub answers: where to go and who to log in as."""
    url = enclave.settings.hub_bind_url.rstrip("/") + "/hub/login"
    lines = ["", "=" * 78,
             "  Enclave sécurisée de la DEPP (démo) — DEPP secure research data enclave (demo)",
             "=" * 78, f"  Ouvrez / open: {url}",
             f"  Portail / portal: {enclave.settings.hub_bind_url.rstrip('/')}/services/portal/",
             "",
             "  Comptes de démonstration / demo accounts (mots de passe générés au premier "
             "démarrage,", f"  dans {_accounts_path(enclave)}):", "",
             *describe_demo_accounts(enclave), "",
             "  Parcours complet en ligne de commande / the whole path from the command line:",
             "    .venv/bin/enclave demo && .venv/bin/enclave audit verify", "",
             "  Ctrl-C pour arrêter / to stop.", "=" * 78]
    return "\n".join(lines)


def generate_demo_data(enclave: Enclave, pupils: int | None = None, seed: int | None = None,
                       traces_per_pupil: float = 20.0) -> list[str]:
    """Generate synthetic DEPP data into the raw zone, then load the catalogue from it."""
    from enclave.demo_data import generate

    written = generate(enclave.settings.raw_dir,
                       pupils=pupils or enclave.settings.demo_pupils,
                       seed=seed if seed is not None else enclave.settings.demo_seed,
                       traces_per_pupil=traces_per_pupil)
    lines = [f"{w.dataset}: {w.rows} rows in {len(w.files)} file(s)" for w in written]
    with enclave.db.transaction() as session:
        catalogue.load_catalogue(session, policy.SYSTEM, enclave.settings.raw_dir)
    enclave.checkpoint_if_due()
    return [*lines, "catalogue loaded from the raw zone"]


@dataclass(frozen=True)
class SkeletonResult:
    """What the walking skeleton produced."""

    project_id: str
    extract_dir: Path
    release_dir: Path
    audit_ok: bool


DEMO_VARIABLES = {
    "eleves": [("sexe", "Écarts filles-garçons"), ("niveau", "Analyse par niveau"),
               ("secteur", "Public/privé"), ("academie", "Variations territoriales")],
}


def walking_skeleton(enclave: Enclave, log: Callable[[str], None] = print) -> SkeletonResult:
    """Project -> approval -> extract -> notebook -> output request -> two reviews -> release."""
    from enclave.provisioning.extracts import build_extract, try_activate
    from enclave.workspaces.notebook_runs import run_notebook, template
    from output_control.review import workflow as outputs

    ensure_demo_accounts(enclave)
    with enclave.db.transaction() as session:
        if session.get(catalogue.Dataset, "eleves") is None:
            raise NotFound("the catalogue has no 'eleves' dataset: run 'enclave demo-data'")

    def actor(name: str) -> policy.Actor:
        with enclave.db.sessions() as session:
            return people.actor_for(session, name)

    alice, bruno, claire = actor("alice"), actor("bruno"), actor("claire")
    with enclave.db.transaction() as session:
        project = projects.create_application(
            session, alice, title="Inégalités de réussite selon le niveau et le sexe",
            summary="Démonstration du parcours complet de l'enclave.",
            end_date=date.today() + timedelta(days=365), variables=DEMO_VARIABLES,
            members=["bruno"])
        project_id = project.id
    log(f"1. alice applied: project {project_id}")
    with enclave.db.transaction() as session:
        projects.transition(session, alice, project_id, ProjectStatus.SUBMITTED)
        projects.transition(session, claire, project_id, ProjectStatus.IN_REVIEW)
        projects.transition(session, claire, project_id, ProjectStatus.APPROVED,
                            reason="Variables proportionnées à la finalité")
    log("2. claire (DEPP staff) reviewed and approved it")
    built = build_extract(enclave.db, enclave.settings, enclave.keys, claire, project_id)
    log(f"3. extract v{built.version} built in {built.path}: "
        + ", ".join(f"{f['name']} ({f['rows']} rows)" for f in built.manifest["files"]))
    for member in (alice, bruno):
        with enclave.db.transaction() as session:
            projects.accept_agreement(session, member, project_id)
    try_activate(enclave.db, project_id)
    log("4. alice and bruno accepted the data-use agreement; the project is active")
    out_dir = outputs.outputs_dir(enclave.settings, project_id)
    run = run_notebook(template("getting_started_en.ipynb"), built.path, out_dir,
                       enclave.settings.projects_dir / project_id / "work" / "alice"
                       / "getting_started_en.ipynb")
    if run.returncode != 0:
        raise RuntimeError(f"the notebook failed:\n{run.log[-3000:]}")
    log(f"5. the getting-started notebook ran under papermill and wrote {out_dir}")
    request_id = outputs.submit_request(enclave.db, enclave.settings, alice, project_id,
                                        {"niveau_par_sexe.csv": "Tableau descriptif"})
    log(f"6. alice asked for a release: {request_id} (automatic checks run)")
    emma, farid = actor("emma"), actor("farid")
    outputs.review(enclave.db, emma, request_id, {"niveau_par_sexe.csv": outputs.Decision.APPROVE})
    state = outputs.review(enclave.db, farid, request_id,
                           {"niveau_par_sexe.csv": outputs.Decision.APPROVE})
    log(f"7. emma and farid (disclosure controllers) reviewed it: {state.value}")
    package = outputs.release(enclave.db, enclave.settings, enclave.keys.signer(), emma,
                              request_id)
    log(f"8. released as a signed package: {package.path}")
    enclave.chain.checkpoint()
    result = enclave.chain.verify()
    log(f"9. audit chain: {result.describe()}")
    return SkeletonResult(project_id, built.path, package.path, result.ok)
