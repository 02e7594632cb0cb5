"""The raw zone's catalogue entries: every dataset's variables, types, kinds and French labels.

The Arrow schema written to Parquet is derived from these declarations, so the files and their
``metadata.json`` (format ``enclave-raw-dataset/1``, read by the core's catalogue loader) cannot
disagree on names, order or types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

FORMAT = "enclave-raw-dataset/1"
PROVIDER = "DEPP (données synthétiques)"
KINDS = frozenset({"direct_identifier", "quasi_identifier", "sensitive", "other"})
UNITS = frozenset({"pupil", "record", "event"})

DIRECT, QUASI, SENSITIVE, OTHER = "direct_identifier", "quasi_identifier", "sensitive", "other"
TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Variable:
    """One column: its Arrow type, its disclosure kind and its French label and description."""

    name: str
    type: pa.DataType
    kind: str
    label: str
    description: str

    def document(self) -> dict[str, str]:
        """The variable's entry in ``metadata.json``."""
        return {"name": self.name, "type": str(self.type), "kind": self.kind,
                "label": self.label, "description": self.description}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the raw zone: id, labels, unit of its rows and ordered variables."""

    dataset: str
    label: str
    description: str
    unit: str
    variables: tuple[Variable, ...]
    pupil_id_variable: str = "ine"

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of every part file, in declared order."""
        return pa.schema([pa.field(v.name, v.type) for v in self.variables])

    def document(self, *, seed: int, files: list[dict[str, Any]]) -> dict[str, Any]:
        """The full ``metadata.json`` document for the given part files."""
        return {"format": FORMAT, "dataset": self.dataset, "label": self.label,
                "description": self.description, "unit": self.unit,
                "pupil_id_variable": self.pupil_id_variable, "provider": PROVIDER,
                "synthetic": True, "seed": seed, "rows": sum(f["rows"] for f in files),
                "files": files, "variables": [v.document() for v in self.variables]}


_INE = Variable("ine", pa.string(), DIRECT, "Identifiant national élève",
                "Identifiant national de l'élève (INE) : 10 chiffres et une lettre clé.")
_NIVEAU = Variable("niveau", pa.string(), QUASI, "Niveau scolaire",
                   "Niveau de l'élève en 2025-2026, du CP à la terminale (CP ... 3e, 2nde, "
                   "1re, Tle).")

ELEVES = DatasetSpec(
    "eleves", "Élèves (base élèves synthétique)",
    "Une ligne par élève scolarisé en 2025-2026, du CP à la terminale, avec son établissement, "
    "sa géographie et ses caractéristiques sociales.",
    "pupil",
    (
        _INE,
        Variable("sexe", pa.string(), QUASI, "Sexe", "Sexe de l'élève : F ou M."),
        Variable("date_naissance", pa.date32(), QUASI, "Date de naissance",
                 "Date de naissance de l'élève."),
        Variable("code_commune", pa.string(), QUASI, "Commune de résidence",
                 "Code INSEE (5 caractères) de la commune de résidence de l'élève."),
        Variable("code_departement", pa.string(), QUASI, "Département",
                 "Code du département de résidence et de scolarisation (2A, 2B, 971 à 976 "
                 "compris)."),
        Variable("academie", pa.string(), QUASI, "Académie",
                 "Académie de l'établissement fréquenté."),
        Variable("uai", pa.string(), QUASI, "Établissement (UAI)",
                 "Unité administrative immatriculée de l'établissement : 7 chiffres et une "
                 "lettre clé."),
        Variable("secteur", pa.string(), QUASI, "Secteur de l'établissement",
                 "Secteur de l'établissement : public ou prive (privé sous contrat)."),
        Variable("ips", pa.float64(), QUASI, "Indice de position sociale",
                 "Indice de position sociale de la famille de l'élève (moyenne 100, "
                 "écart-type 15 environ)."),
        _NIVEAU,
        Variable("boursier", pa.bool_(), SENSITIVE, "Élève boursier",
                 "Vrai si l'élève bénéficie d'une bourse nationale (collège et lycée "
                 "seulement)."),
        Variable("handicap", pa.string(), SENSITIVE, "Trouble (élève en situation de handicap)",
                 "Catégorie de trouble de l'élève accompagné au titre du handicap ; vide "
                 "sinon."),
    ),
)

EVALUATIONS_REPERES = DatasetSpec(
    "evaluations_reperes", "Évaluations nationales repères (synthétiques)",
    "Une ligne par élève évalué et par domaine aux évaluations repères de début de CP, de CE1 "
    "et de 6e.",
    "record",
    (
        _INE,
        Variable("annee", pa.int16(), OTHER, "Année de l'évaluation",
                 "Année civile de la passation (rentrée scolaire)."),
        Variable("niveau", pa.string(), QUASI, "Niveau évalué",
                 "Niveau de l'élève lors de la passation : CP, CE1 ou 6e."),
        Variable("domaine", pa.string(), OTHER, "Domaine évalué",
                 "Domaine de l'évaluation : francais ou mathematiques."),
        Variable("score", pa.float64(), OTHER, "Score",
                 "Score de l'élève sur l'échelle nationale (moyenne 250, écart-type 50)."),
        Variable("groupe_maitrise", pa.int8(), OTHER, "Groupe de maîtrise",
                 "Groupe de maîtrise de 1 (très fragile) à 6 (très bonne maîtrise), déduit "
                 "du score par seuils de 50 points."),
    ),
)

EXAMENS = DatasetSpec(
    "examens", "Résultats aux examens DNB et baccalauréat (synthétiques)",
    "Une ligne par candidat présent au diplôme national du brevet (3e) ou au baccalauréat "
    "(terminale), session 2025.",
    "record",
    (
        _INE,
        Variable("session", pa.int16(), OTHER, "Session", "Année de la session d'examen."),
        Variable("examen", pa.string(), OTHER, "Examen",
                 "Examen passé : DNB (brevet) ou BAC (baccalauréat)."),
        Variable("serie", pa.string(), OTHER, "Voie du baccalauréat",
                 "Voie du baccalauréat : generale, technologique ou professionnelle ; vide "
                 "pour le DNB."),
        Variable("note_moyenne", pa.float64(), OTHER, "Note moyenne",
                 "Moyenne générale du candidat, sur 20."),
        Variable("admis", pa.bool_(), OTHER, "Admis",
                 "Vrai si le candidat est admis (moyenne au moins égale à 10)."),
        Variable("mention", pa.string(), OTHER, "Mention",
                 "Mention obtenue : AB, B, TB ou TBF (félicitations, baccalauréat seulement) ; "
                 "vide sans mention."),
    ),
)

TRACES_XAPI = DatasetSpec(
    "traces_xapi", "Traces d'apprentissage xAPI de l'ENT (synthétiques)",
    "Une ligne par déclaration xAPI émise par la plateforme d'apprentissage de l'ENT pendant "
    "l'année scolaire 2025-2026.",
    "event",
    (
        Variable("statement_id", pa.string(), DIRECT, "Identifiant de la déclaration",
                 "Identifiant unique (UUID) de la déclaration xAPI."),
        Variable("ine", pa.string(), DIRECT, "Identifiant national élève",
                 "INE de l'élève auteur de l'activité (acteur de la déclaration)."),
        Variable("verbe", pa.string(), OTHER, "Verbe xAPI",
                 "Identifiant (IRI) du verbe xAPI de la déclaration."),
        Variable("objet_id", pa.string(), OTHER, "Activité",
                 "Identifiant (IRI) de l'activité pédagogique objet de la déclaration."),
        Variable("matiere", pa.string(), OTHER, "Matière", "Matière de l'activité."),
        Variable("niveau_objet", pa.string(), OTHER, "Niveau de l'activité",
                 "Niveau scolaire auquel l'activité est destinée."),
        Variable("horodatage", TIMESTAMP_UTC, OTHER, "Horodatage",
                 "Date et heure de la déclaration, en temps universel (UTC)."),
        Variable("duree_s", pa.int32(), OTHER, "Durée (secondes)",
                 "Durée de l'activité en secondes."),
        Variable("score_brut", pa.float64(), OTHER, "Score brut",
                 "Score obtenu, entre 0 et 1 ; vide si le verbe ne porte pas de résultat."),
        Variable("succes", pa.bool_(), OTHER, "Succès",
                 "Vrai si l'activité est réussie (score d'au moins 0,5) ; vide sans "
                 "résultat."),
    ),
)

DATASETS: tuple[DatasetSpec, ...] = (ELEVES, EVALUATIONS_REPERES, EXAMENS, TRACES_XAPI)
