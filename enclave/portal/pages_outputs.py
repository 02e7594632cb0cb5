"""Output review in the portal: the controllers' queue, a request's page (per-file verdicts in
plain words, provenance, CSV summaries, the project's earlier releases and differencing hits),
the blind vote form, the release, the provenance re-run of the request's notebooks with its
comparison; for researchers their requests, submitting the ``release_request.json`` a notebook
wrote (exception requests shown to controllers next to the rules they concern), the comments
shared with them, withdrawing, amending and resubmitting, and downloading a released package.

Every route is guarded by the login rule (``page_guard(policy.check_log_in)``) and every
decision about the person *and the request* is taken by the review workflow
(:mod:`output_control.review.workflow`), which raises ``PermissionDenied`` (a 403 page): who may
see a request, vote, release, withdraw, resubmit or download. Forms get the CSRF check from the
application. Researcher-made content is never rendered as markup: file contents appear only as
numbers in the CSV summary, and every text (labels, comments, code) goes through autoescaping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from enclave.core import policy
from enclave.core.exceptions import InvalidTransition, ValidationError
from enclave.core.policy import Actor
from enclave.portal.extensions import Entry, Extension
from enclave.portal.runtime import portal_of
from enclave.portal.viewer import Viewer, page_guard
from enclave.privacy_budget.exceptions import BudgetExceeded, NoBudget
from enclave.sandbox.exceptions import SandboxError
from output_control import differencing
from output_control.review import manifests, rerun
from output_control.review import workflow as outputs
from output_control.review.workflow import Amendment, Decision, Visibility

router = APIRouter()
LOGGED_IN = page_guard(policy.check_log_in)
TEXT_MAX = outputs.MAX_TEXT
#: DSFR badge modifier of each request status and check outcome.
BADGES = {"submitted": "fr-badge--info", "returned": "fr-badge--warning",
          "approved": "fr-badge--success", "rejected": "fr-badge--error",
          "released": "fr-badge--success", "withdrawn": "",
          "pass": "fr-badge--success", "review": "fr-badge--warning", "fail": "fr-badge--error",
          "approve": "fr-badge--success", "reject": "fr-badge--error",
          "return": "fr-badge--warning"}
FILE_ACTIONS = ("keep", "replace", "remove")


def _controller(actor: Actor) -> bool:
    """Menu visibility: controllers (outside any given project) and the ethics committee."""
    return policy.can_read_reviews(actor, ())


def _clean(text: object, limit: int = TEXT_MAX) -> str:
    """Form text, stripped, refused if too long or holding control characters."""
    value = str(text or "").strip()
    if len(value) > limit:
        raise ValidationError(f"a text is longer than {limit} characters")
    if any((ord(ch) < 32 and ch not in "\r\n\t") or ord(ch) == 127 for ch in value):
        raise ValidationError("a text holds control characters")
    return value


@dataclass
class VoteForm:
    """The vote form as typed: per file a decision, a comment and its visibility."""

    decisions: dict[str, str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    visibility: dict[str, str] = field(default_factory=dict)
    error: str = ""


def _parse_vote(form: Any, names: list[str]) -> VoteForm:
    out = VoteForm()
    for i, name in enumerate(names):
        out.decisions[name] = str(form.get(f"decision-{i}") or "")[:20]
        out.comments[name] = str(form.get(f"comment-{i}") or "")[:TEXT_MAX * 2]
        out.visibility[name] = str(form.get(f"visibility-{i}") or "private")[:20]
    return out


def _verdict_rows(view: outputs.RequestView) -> dict[str, list[dict[str, Any]]]:
    """Per file, the rules that did not pass, with their cells and, next to each, the
    researcher's exception request when it names that rule (a rule an exception names that
    passed is listed too, so the request is never hidden)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for f in view.files:
        asked = outputs.exception_rules(f.row)
        reason = f.row.exception_request if asked else ""
        lines = [
            {"rule": v.rule, "outcome": v.outcome.value, "message": v.message,
             "cells": [", ".join(c.cell) for c in v.cells[:50]], "more": max(0, len(v.cells) - 50),
             "exception": reason if v.rule in asked else ""}
            for v in f.checks.verdicts if v.outcome.value != "pass" or v.rule in asked]
        shown = {line["rule"] for line in lines}
        lines += [{"rule": rule, "outcome": "", "message": "", "cells": [], "more": 0,
                   "exception": reason} for rule in asked if rule not in shown]
        rows[f.row.name] = lines
    return rows


MAX_GRID_CELLS = 2000


def _grid(f: outputs.FileView) -> dict[str, Any] | None:
    """The checked table as text cells with the cells any rule flagged marked; None for a file
    that could not be verified, or too large a table (the summary and findings remain)."""
    table = f.table
    if table is None or len(table.row_labels) * len(table.column_labels) > MAX_GRID_CELLS:
        return None
    variables = (*table.index, *table.columns)
    flagged: set[tuple[str, ...]] = set()
    for verdict in f.checks.verdicts:
        if verdict.outcome.value == "pass":
            continue
        for cell in verdict.cells:
            if verdict.rule == differencing.RULE:  # cells named "variable=label"
                named = dict(part.split("=", 1) for part in cell.cell if "=" in part)
                flagged.add(tuple(named.get(v, "") for v in variables))
            else:
                flagged.add(tuple(cell.cell))
    rows: list[dict[str, Any]] = []
    count = 0
    for key, values in zip(table.row_labels, table.published, strict=True):
        cells = []
        for column, value in zip(table.column_labels, values, strict=True):
            marked = (*key, *column) in flagged
            count += marked
            cells.append({"value": "—" if value is None else value, "flagged": marked})
        rows.append({"labels": list(key), "cells": cells})
    return {"index": list(table.index),
            "columns": [" / ".join(c) if c else "" for c in table.column_labels],
            "column_title": " / ".join(table.columns), "rows": rows, "flagged": count}


def _ledger_rows(view: outputs.RequestView) -> list[dict[str, Any]]:
    rows = []
    for table in view.earlier_releases:
        try:
            population = differencing.parse_population(json.loads(table.population))
        except (ValueError, TypeError):
            population = None
        rows.append({"request": table.request_id, "file": table.file_name,
                     "population": population.words() if population else None,
                     "released_at": table.released_at})
    return rows


def _request_page(request: Request, viewer: Viewer, request_id: str, *, status: int = 200,
                  form: VoteForm | None = None, error: str = "",
                  notice: str = "") -> HTMLResponse:
    portal = portal_of(request)
    view = outputs.view_request(portal.enclave.db, viewer.actor, request_id)
    names = [f.row.name for f in view.files]
    return portal.renderer.page(
        request, viewer, "outputs/request.html", "outputs.request_title", status, view=view,
        names=names, verdicts=_verdict_rows(view), ledger=_ledger_rows(view),
        form=form or VoteForm(), decisions=[d.value for d in Decision],
        visibilities=[v.value for v in Visibility], file_actions=FILE_ACTIONS,
        badges=BADGES, error=error, notice=notice,
        may_download=view.release is not None
        and policy.can_download_release(viewer.actor, view.release.requester),
        provenance={f.row.name: {k: f.provenance.get(k) for k in
                                 ("function", "notebook", "cell_source")} for f in view.files},
        grids={f.row.name: _grid(f) for f in view.files},
        exception_rules={f.row.name: outputs.exception_rules(f.row) for f in view.files},
        reruns=rerun.reruns_of(portal.enclave.db, viewer.actor, request_id)
        if view.audience == "controller" else [],
        may_rerun=view.audience == "controller"
        and rerun.may_rerun(portal.enclave.db, viewer.actor, request_id),
        population={f.row.name: json.dumps(f.population, ensure_ascii=False, sort_keys=True)
                    if f.population else "" for f in view.files})


def _mine_page(request: Request, viewer: Viewer, *, status: int = 200,
               error: str = "") -> HTMLResponse:
    portal = portal_of(request)
    enclave = portal.enclave
    rows = outputs.requests_of(enclave.db, viewer.actor)
    pending = manifests.pending_manifests(enclave.db, enclave.settings, viewer.actor)
    return portal.renderer.page(request, viewer, "outputs/mine.html", "outputs.mine_title",
                                status, rows=rows, badges=BADGES, pending=pending, error=error)


@router.get("/outputs", response_class=HTMLResponse, include_in_schema=False)
def my_requests(request: Request, viewer: Annotated[Viewer, LOGGED_IN]) -> HTMLResponse:
    """The output requests of my projects, newest first, and the request files waiting in
    their outputs areas, each with its button to submit it."""
    return _mine_page(request, viewer)


@router.post("/outputs/submit-request-file", include_in_schema=False)
async def submit_request_file(request: Request,
                              viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """A member submits the ``release_request.json`` of a project's outputs area."""
    form = await request.form()
    return await run_in_threadpool(_submit_request_file, request, viewer,
                                   str(form.get("project_id") or "")[:100])


def _submit_request_file(request: Request, viewer: Viewer, project_id: str) -> Response:
    portal = portal_of(request)
    enclave = portal.enclave
    try:
        request_id = manifests.submit_manifest(enclave.db, enclave.settings, viewer.actor,
                                               project_id)
    except (ValidationError, BudgetExceeded, NoBudget) as exc:
        return _mine_page(request, viewer, status=400, error=str(exc))
    return RedirectResponse(portal.url(f"outputs/{request_id}") + "?done=submitted",
                            status_code=303)


@router.get("/outputs/queue", response_class=HTMLResponse, include_in_schema=False)
def queue(request: Request, viewer: Annotated[Viewer, LOGGED_IN]) -> HTMLResponse:
    """Requests waiting for a controller: to vote on, or approved and waiting for release."""
    portal = portal_of(request)
    rows = outputs.review_queue(portal.enclave.db, viewer.actor)
    return portal.renderer.page(request, viewer, "outputs/queue.html", "outputs.queue_title",
                                rows=rows, badges=BADGES)


@router.get("/outputs/{request_id}", response_class=HTMLResponse, include_in_schema=False)
def request_page(request: Request, request_id: str,
                 viewer: Annotated[Viewer, LOGGED_IN]) -> HTMLResponse:
    """One request, as a controller or as a member of its project sees it."""
    notice = request.query_params.get("done", "")[:20]
    known = {"voted", "released", "withdrawn", "resubmitted", "submitted", "rerun"}
    return _request_page(request, viewer, request_id,
                         notice=f"outputs.done.{notice}" if notice in known else "")


@router.post("/outputs/{request_id}/vote", include_in_schema=False)
async def vote(request: Request, request_id: str,
               viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """A controller's blind vote on every file of the current round."""
    form = await request.form()
    return await run_in_threadpool(_vote, request, viewer, request_id, form)


def _vote(request: Request, viewer: Viewer, request_id: str, raw: Any) -> Response:
    portal = portal_of(request)
    names = [f.row.name for f in
             outputs.view_request(portal.enclave.db, viewer.actor, request_id).files]
    form = _parse_vote(raw, names)
    try:
        outputs.review(portal.enclave.db, viewer.actor, request_id, form.decisions,
                       {n: _clean(c) for n, c in form.comments.items()}, form.visibility)
    except ValidationError as exc:
        form.error = str(exc)
        return _request_page(request, viewer, request_id, status=400, form=form)
    return RedirectResponse(portal.url(f"outputs/{request_id}") + "?done=voted",
                            status_code=303)


@router.post("/outputs/{request_id}/rerun", include_in_schema=False)
async def rerun_notebooks(request: Request, request_id: str,
                          viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """A controller outside the project has the enclave re-run the request's notebooks in a
    fresh sandbox and compare the results (stored and audited by the workflow)."""
    return await run_in_threadpool(_rerun, request, viewer, request_id)


def _rerun(request: Request, viewer: Viewer, request_id: str) -> Response:
    portal = portal_of(request)
    enclave = portal.enclave
    try:
        rerun.rerun_request(enclave.db, enclave.settings, viewer.actor, request_id)
    except (ValidationError, SandboxError) as exc:
        return _request_page(request, viewer, request_id, status=409, error=str(exc))
    return RedirectResponse(portal.url(f"outputs/{request_id}") + "?done=rerun",
                            status_code=303)


@router.post("/outputs/{request_id}/release", include_in_schema=False)
async def release(request: Request, request_id: str,
                  viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """A controller outside the project releases a request both reviews approved."""
    return await run_in_threadpool(_release, request, viewer, request_id)


def _release(request: Request, viewer: Viewer, request_id: str) -> Response:
    portal = portal_of(request)
    enclave = portal.enclave
    outputs.release(enclave.db, enclave.settings, enclave.keys.signer(), viewer.actor,
                    request_id)
    return RedirectResponse(portal.url(f"outputs/{request_id}") + "?done=released",
                            status_code=303)


@router.post("/outputs/{request_id}/withdraw", include_in_schema=False)
async def withdraw(request: Request, request_id: str,
                   viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """A member of the project withdraws a request under review or returned."""
    form = await request.form()
    return await run_in_threadpool(_withdraw, request, viewer, request_id,
                                   str(form.get("reason") or "")[:TEXT_MAX * 2])


def _withdraw(request: Request, viewer: Viewer, request_id: str, reason: str) -> Response:
    portal = portal_of(request)
    try:
        outputs.withdraw(portal.enclave.db, viewer.actor, request_id, _clean(reason))
    except (ValidationError, InvalidTransition) as exc:
        return _request_page(request, viewer, request_id, status=409, error=str(exc))
    return RedirectResponse(portal.url(f"outputs/{request_id}") + "?done=withdrawn",
                            status_code=303)


@router.post("/outputs/{request_id}/resubmit", include_in_schema=False)
async def resubmit(request: Request, request_id: str,
                   viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """A member amends a returned request (keep, replace or remove each file, add files from
    the outputs folder, update justifications and exception requests) and resubmits it."""
    form = await request.form()
    return await run_in_threadpool(_resubmit, request, viewer, request_id, form)


def _amendment(raw: Any, names: list[str]) -> Amendment:
    replace: dict[str, str] = {}
    remove: list[str] = []
    justifications: dict[str, str] = {}
    exceptions: dict[str, str] = {}
    for i, name in enumerate(names):
        action = str(raw.get(f"action-{i}") or "keep")
        if action not in FILE_ACTIONS:
            raise ValidationError(f"{action[:20]!r} is not an action on a file")
        justification = _clean(raw.get(f"justification-{i}"))
        if action == "remove":
            remove.append(name)
            continue
        if action == "replace":
            replace[name] = justification
        else:
            justifications[name] = justification
        exceptions[name] = _clean(raw.get(f"exception-{i}"))
    for added in _clean(raw.get("add"), 2000).replace(",", " ").split():
        if added in replace or added in names:
            raise ValidationError(f"{added} is already in the request")
        replace[added] = _clean(raw.get("add_justification"))
    return Amendment(replace=replace, remove=tuple(remove), justifications=justifications,
                     exception_requests=exceptions)


def _resubmit(request: Request, viewer: Viewer, request_id: str, raw: Any) -> Response:
    portal = portal_of(request)
    names = [f.row.name for f in
             outputs.view_request(portal.enclave.db, viewer.actor, request_id).files]
    try:
        outputs.resubmit(portal.enclave.db, portal.enclave.settings, viewer.actor, request_id,
                         _amendment(raw, names))
    except (ValidationError, InvalidTransition) as exc:
        return _request_page(request, viewer, request_id, status=400, error=str(exc))
    return RedirectResponse(portal.url(f"outputs/{request_id}") + "?done=resubmitted",
                            status_code=303)


@router.get("/outputs/{request_id}/download", include_in_schema=False)
def download(request: Request, request_id: str,
             viewer: Annotated[Viewer, LOGGED_IN]) -> Response:
    """The signed release package as a zip, for its requester (audited by the workflow)."""
    portal = portal_of(request)
    name, data = outputs.download_package(portal.enclave.db, viewer.actor, request_id)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


_OUTPUTS_FR: dict[str, str] = {
    "nav.outputs_mine": "Mes demandes de sortie",
    "nav.outputs_queue": "Contrôle des sorties",
    "tile.outputs_mine": "Vos demandes de sortie de résultats, les commentaires des "
                         "contrôleurs et les paquets publiés.",
    "tile.outputs_queue": "Les demandes de sortie qui attendent votre contrôle ou leur "
                          "publication.",
    "outputs.mine_title": "Mes demandes de sortie",
    "outputs.mine_intro": "Les demandes de sortie des projets dont vous êtes membre.",
    "outputs.mine_caption": "Demandes de sortie ({n})",
    "outputs.none": "Aucune demande de sortie.",
    "outputs.queue_title": "Contrôle des sorties",
    "outputs.queue_intro": "Les demandes à contrôler (à l'aveugle : vous ne voyez le vote de "
                           "l'autre contrôleur qu'une fois les deux votes exprimés) et celles "
                           "approuvées qui attendent leur publication. Les demandes de vos "
                           "propres projets n'y figurent pas.",
    "outputs.queue_caption": "Demandes à traiter ({n})",
    "outputs.queue_none": "Aucune demande n'attend de contrôle.",
    "outputs.id": "Demande",
    "outputs.project": "Projet",
    "outputs.requester": "Demandeur",
    "outputs.status": "Statut",
    "outputs.round": "Tour",
    "outputs.created": "Déposée le",
    "outputs.open": "Ouvrir",
    "outputs.to_vote": "À voter",
    "outputs.to_release": "À publier",
    "outputs.voted": "Aucun vote attendu de vous",
    "outputs.request_title": "Demande de sortie",
    "outputs.back_queue": "Retour à la file de contrôle",
    "outputs.back_mine": "Retour à mes demandes",
    "outputs.summary": "Demande {id} du projet {project}, par {requester} — tour {round}",
    "outputs.justification": "Justification",
    "outputs.exception": "Demande d'exception",
    "outputs.files": "Fichiers",
    "outputs.file": "Fichier",
    "outputs.sha256": "SHA-256",
    "outputs.size": "Taille (octets)",
    "outputs.check": "Contrôle automatique",
    "outputs.rules": "Règles non satisfaites",
    "outputs.rule": "Règle",
    "outputs.outcome": "Verdict",
    "outputs.message": "Explication",
    "outputs.cells": "Cellules",
    "outputs.more_cells": "et {n} autres",
    "outputs.all_passed": "Toutes les vérifications automatiques sont passées.",
    "outputs.provenance": "Provenance",
    "outputs.function": "Fonction",
    "outputs.notebook": "Notebook",
    "outputs.code": "Code de la cellule",
    "outputs.population": "Population (jeu de données, version d'extraction, filtres)",
    "outputs.not_described": "Non décrite",
    "outputs.csv_summary": "Résumé du CSV (le fichier n'est jamais affiché tel quel)",
    "outputs.grid": "Tableau vérifié ({n} cellule(s) signalée(s), surlignée(s))",
    "outputs.column": "Colonne",
    "outputs.count": "Valeurs",
    "outputs.min": "Minimum",
    "outputs.min_nonzero": "Minimum non nul",
    "outputs.sum": "Somme",
    "outputs.multiples_of_5": "Multiples de 5",
    "outputs.no_summary": "Pas de résumé (fichier illisible ou sans nombre).",
    "outputs.differencing_alert": "Différenciation : un tableau de cette demande, soustrait "
                                  "d'un autre tableau publié ou joint, révèle une petite "
                                  "cellule. Voir la règle « differencing » du fichier {file}.",
    "outputs.earlier": "Publications antérieures du projet",
    "outputs.earlier_caption": "Tableaux publiés ({n})",
    "outputs.earlier_none": "Aucun tableau publié auparavant par ce projet.",
    "outputs.released_at": "Publié le",
    "outputs.votes": "Votes",
    "outputs.votes_blind": "Vote de l'autre contrôleur masqué jusqu'à ce que les deux votes "
                           "de ce tour soient exprimés.",
    "outputs.reviewer": "Contrôleur",
    "outputs.decision": "Décision",
    "outputs.comment": "Commentaire",
    "outputs.visibility": "Visibilité",
    "outputs.decision.approve": "Approuver",
    "outputs.decision.reject": "Refuser",
    "outputs.decision.return": "Renvoyer au chercheur",
    "outputs.visibility.private": "Réservé aux contrôleurs",
    "outputs.visibility.shared": "Partagé avec le chercheur",
    "outputs.vote_title": "Votre vote",
    "outputs.vote_hint": "Un refus ou un renvoi exige un commentaire.",
    "outputs.vote_submit": "Enregistrer mon vote",
    "outputs.release_title": "Publication",
    "outputs.release_text": "Les deux contrôleurs ont approuvé chaque fichier : le paquet "
                            "signé peut être publié.",
    "outputs.release_submit": "Publier le paquet signé",
    "outputs.comments": "Commentaires des contrôleurs",
    "outputs.comments_none": "Aucun commentaire partagé avec vous.",
    "outputs.withdraw_title": "Retirer la demande",
    "outputs.withdraw_reason": "Motif (facultatif)",
    "outputs.withdraw_submit": "Retirer la demande",
    "outputs.resubmit_title": "Modifier et redéposer",
    "outputs.resubmit_text": "Pour chaque fichier : le garder, le remplacer par sa version "
                             "actuelle du dossier des sorties, ou le retirer. Un nouveau tour "
                             "de contrôle à l'aveugle commence.",
    "outputs.action": "Action",
    "outputs.action.keep": "Garder",
    "outputs.action.replace": "Remplacer",
    "outputs.action.remove": "Retirer",
    "outputs.add": "Ajouter des fichiers du dossier des sorties (noms séparés par des espaces)",
    "outputs.add_justification": "Justification des fichiers ajoutés",
    "outputs.resubmit_submit": "Redéposer la demande",
    "outputs.download": "Télécharger le paquet publié (zip signé)",
    "outputs.history": "Historique des fichiers",
    "outputs.retired": "Remplacé ou retiré au tour {round}",
    "outputs.current": "Actuel",
    "outputs.done.voted": "Votre vote est enregistré.",
    "outputs.done.released": "Le paquet signé est publié.",
    "outputs.done.withdrawn": "La demande est retirée.",
    "outputs.done.resubmitted": "La demande est redéposée : un nouveau tour de contrôle "
                                "commence.",
    "outputs.done.submitted": "La demande est déposée : les contrôles automatiques sont faits "
                              "et elle attend deux contrôleurs.",
    "outputs.done.rerun": "Le notebook a été réexécuté et la comparaison est enregistrée.",
    "outputs.pending_title": "Fichiers de demande écrits par vos notebooks",
    "outputs.pending_intro": "Un notebook peut écrire release_request.json dans le dossier des "
                             "sorties du projet (fichiers, justifications, demandes "
                             "d'exception). Déposez-le ici pour lancer le contrôle.",
    "outputs.pending_files": "{n} fichier(s)",
    "outputs.pending_problem": "Ce fichier ne peut pas être déposé : {reason}",
    "outputs.pending_submit": "Déposer cette demande",
    "outputs.exception_rules": "Règles visées par la demande d'exception",
    "outputs.exception_for": "Exception demandée",
    "outputs.rerun_title": "Réexécution du notebook",
    "outputs.rerun_text": "L'enclave exécute à nouveau le notebook enregistré de chaque "
                          "fichier, dans un bac à sable neuf, sur la même version de "
                          "l'extraction, et compare les fichiers produits aux fichiers déposés.",
    "outputs.rerun_submit": "Réexécuter et comparer",
    "outputs.reruns_caption": "Réexécutions ({n})",
    "outputs.reruns_none": "Aucune réexécution demandée.",
    "outputs.rerun_by": "Demandée par",
    "outputs.rerun_at": "Le",
    "outputs.rerun_extract": "extraction v{version}",
    "outputs.rerun_exit": "code de sortie {code}",
    "outputs.error": "La demande n'a pas été prise en compte : {reason}",
    "outputs.state.submitted": "Déposée",
    "outputs.state.returned": "Renvoyée",
    "outputs.state.approved": "Approuvée",
    "outputs.state.rejected": "Refusée",
    "outputs.state.released": "Publiée",
    "outputs.state.withdrawn": "Retirée",
    "outputs.state.pass": "Conforme",
    "outputs.state.review": "À examiner",
    "outputs.state.fail": "Non conforme",
}
_OUTPUTS_EN: dict[str, str] = {
    "nav.outputs_mine": "My output requests",
    "nav.outputs_queue": "Output checking",
    "tile.outputs_mine": "Your requests to take results out, the controllers' comments and "
                         "released packages.",
    "tile.outputs_queue": "Output requests waiting for your review or for release.",
    "outputs.mine_title": "My output requests",
    "outputs.mine_intro": "The output requests of the projects you are a member of.",
    "outputs.mine_caption": "Output requests ({n})",
    "outputs.none": "No output request.",
    "outputs.queue_title": "Output checking",
    "outputs.queue_intro": "Requests to review (blind: you see the other controller's vote "
                           "only once both have voted) and approved ones waiting for release. "
                           "Requests of your own projects are not listed.",
    "outputs.queue_caption": "Requests to handle ({n})",
    "outputs.queue_none": "No request is waiting for review.",
    "outputs.id": "Request",
    "outputs.project": "Project",
    "outputs.requester": "Requester",
    "outputs.status": "Status",
    "outputs.round": "Round",
    "outputs.created": "Submitted on",
    "outputs.open": "Open",
    "outputs.to_vote": "To vote",
    "outputs.to_release": "To release",
    "outputs.voted": "No vote expected from you",
    "outputs.request_title": "Output request",
    "outputs.back_queue": "Back to the review queue",
    "outputs.back_mine": "Back to my requests",
    "outputs.summary": "Request {id} of project {project}, by {requester} — round {round}",
    "outputs.justification": "Justification",
    "outputs.exception": "Exception request",
    "outputs.files": "Files",
    "outputs.file": "File",
    "outputs.sha256": "SHA-256",
    "outputs.size": "Size (bytes)",
    "outputs.check": "Automatic check",
    "outputs.rules": "Rules not satisfied",
    "outputs.rule": "Rule",
    "outputs.outcome": "Verdict",
    "outputs.message": "Explanation",
    "outputs.cells": "Cells",
    "outputs.more_cells": "and {n} more",
    "outputs.all_passed": "Every automatic check passed.",
    "outputs.provenance": "Provenance",
    "outputs.function": "Function",
    "outputs.notebook": "Notebook",
    "outputs.code": "Cell code",
    "outputs.population": "Population (dataset, extract version, filters)",
    "outputs.not_described": "Not described",
    "outputs.csv_summary": "CSV summary (the file itself is never displayed)",
    "outputs.grid": "Checked table ({n} flagged cell(s), highlighted)",
    "outputs.column": "Column",
    "outputs.count": "Values",
    "outputs.min": "Minimum",
    "outputs.min_nonzero": "Minimum above zero",
    "outputs.sum": "Sum",
    "outputs.multiples_of_5": "Multiples of 5",
    "outputs.no_summary": "No summary (unreadable file or no numbers).",
    "outputs.differencing_alert": "Differencing: a table of this request, subtracted from "
                                  "another released or attached table, reveals a small cell. "
                                  "See the 'differencing' rule of file {file}.",
    "outputs.earlier": "The project's earlier releases",
    "outputs.earlier_caption": "Released tables ({n})",
    "outputs.earlier_none": "This project has released no table before.",
    "outputs.released_at": "Released on",
    "outputs.votes": "Votes",
    "outputs.votes_blind": "The other controller's vote is hidden until both votes of this "
                           "round are in.",
    "outputs.reviewer": "Controller",
    "outputs.decision": "Decision",
    "outputs.comment": "Comment",
    "outputs.visibility": "Visibility",
    "outputs.decision.approve": "Approve",
    "outputs.decision.reject": "Reject",
    "outputs.decision.return": "Return to the researcher",
    "outputs.visibility.private": "Controllers only",
    "outputs.visibility.shared": "Shared with the researcher",
    "outputs.vote_title": "Your vote",
    "outputs.vote_hint": "Rejecting or returning needs a comment.",
    "outputs.vote_submit": "Record my vote",
    "outputs.release_title": "Release",
    "outputs.release_text": "Both controllers approved every file: the signed package can be "
                            "released.",
    "outputs.release_submit": "Release the signed package",
    "outputs.comments": "Controllers' comments",
    "outputs.comments_none": "No comment shared with you.",
    "outputs.withdraw_title": "Withdraw the request",
    "outputs.withdraw_reason": "Reason (optional)",
    "outputs.withdraw_submit": "Withdraw the request",
    "outputs.resubmit_title": "Amend and resubmit",
    "outputs.resubmit_text": "For each file: keep it, replace it with its current version in "
                             "the outputs folder, or remove it. A new blind review round "
                             "starts.",
    "outputs.action": "Action",
    "outputs.action.keep": "Keep",
    "outputs.action.replace": "Replace",
    "outputs.action.remove": "Remove",
    "outputs.add": "Add files from the outputs folder (names separated by spaces)",
    "outputs.add_justification": "Justification of the added files",
    "outputs.resubmit_submit": "Resubmit the request",
    "outputs.download": "Download the released package (signed zip)",
    "outputs.history": "File history",
    "outputs.retired": "Replaced or removed in round {round}",
    "outputs.current": "Current",
    "outputs.done.voted": "Your vote is recorded.",
    "outputs.done.released": "The signed package is released.",
    "outputs.done.withdrawn": "The request is withdrawn.",
    "outputs.done.resubmitted": "The request is resubmitted: a new review round starts.",
    "outputs.done.submitted": "The request is submitted: the automatic checks ran and it "
                              "waits for two controllers.",
    "outputs.done.rerun": "The notebook was run again and the comparison is recorded.",
    "outputs.pending_title": "Request files written by your notebooks",
    "outputs.pending_intro": "A notebook may write release_request.json in the project's "
                             "outputs folder (files, justifications, exception requests). "
                             "Submit it here to start the review.",
    "outputs.pending_files": "{n} file(s)",
    "outputs.pending_problem": "This file cannot be submitted: {reason}",
    "outputs.pending_submit": "Submit this request",
    "outputs.exception_rules": "Rules the exception request concerns",
    "outputs.exception_for": "Exception requested",
    "outputs.rerun_title": "Notebook re-run",
    "outputs.rerun_text": "The enclave runs each file's recorded notebook again, in a fresh "
                          "sandbox, on the same extract version, and compares the files it "
                          "writes with the submitted ones.",
    "outputs.rerun_submit": "Re-run and compare",
    "outputs.reruns_caption": "Re-runs ({n})",
    "outputs.reruns_none": "No re-run asked for.",
    "outputs.rerun_by": "Asked by",
    "outputs.rerun_at": "On",
    "outputs.rerun_extract": "extract v{version}",
    "outputs.rerun_exit": "exit code {code}",
    "outputs.error": "The request was not taken into account: {reason}",
    "outputs.state.submitted": "Submitted",
    "outputs.state.returned": "Returned",
    "outputs.state.approved": "Approved",
    "outputs.state.rejected": "Rejected",
    "outputs.state.released": "Released",
    "outputs.state.withdrawn": "Withdrawn",
    "outputs.state.pass": "Pass",
    "outputs.state.review": "To review",
    "outputs.state.fail": "Fail",
}
OUTPUT_MESSAGES = {"fr": _OUTPUTS_FR, "en": _OUTPUTS_EN}

OUTPUTS = Extension("outputs", pages=router, menu=(
    Entry("nav.outputs_mine", "outputs", policy.can_apply_for_project, order=40),
    Entry("nav.outputs_queue", "outputs/queue", _controller, order=45),
), tiles=(
    Entry("nav.outputs_mine", "outputs", policy.can_apply_for_project, "tile.outputs_mine",
          order=40),
    Entry("nav.outputs_queue", "outputs/queue", _controller, "tile.outputs_queue", order=45),
), messages=OUTPUT_MESSAGES)
