"""Synthetic French geography: académies, départements (with overseas) and INSEE-like communes.

The académies and départements are the real ones (2020 map: Normandie merged); populations are
rounded figures, in thousands, only used as weights. Communes are invented but carry well-formed
5-character INSEE codes (``2A004``, ``97411``, Paris arrondissements ``75101``..``75120``) and a
Zipf-skewed population, so some communes are tiny: the geographic quasi-identifiers then carry
the disclosure risk real data has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# (code, name, académie, population in thousands)
DEPARTEMENTS: tuple[tuple[str, str, str, int], ...] = (
    ("01", "Ain", "Lyon", 660),
    ("02", "Aisne", "Amiens", 530),
    ("03", "Allier", "Clermont-Ferrand", 335),
    ("04", "Alpes-de-Haute-Provence", "Aix-Marseille", 165),
    ("05", "Hautes-Alpes", "Aix-Marseille", 140),
    ("06", "Alpes-Maritimes", "Nice", 1090),
    ("07", "Ardèche", "Grenoble", 330),
    ("08", "Ardennes", "Reims", 270),
    ("09", "Ariège", "Toulouse", 155),
    ("10", "Aube", "Reims", 310),
    ("11", "Aude", "Montpellier", 375),
    ("12", "Aveyron", "Toulouse", 280),
    ("13", "Bouches-du-Rhône", "Aix-Marseille", 2040),
    ("14", "Calvados", "Normandie", 700),
    ("15", "Cantal", "Clermont-Ferrand", 145),
    ("16", "Charente", "Poitiers", 350),
    ("17", "Charente-Maritime", "Poitiers", 655),
    ("18", "Cher", "Orléans-Tours", 300),
    ("19", "Corrèze", "Limoges", 240),
    ("2A", "Corse-du-Sud", "Corse", 160),
    ("2B", "Haute-Corse", "Corse", 180),
    ("21", "Côte-d'Or", "Dijon", 535),
    ("22", "Côtes-d'Armor", "Rennes", 600),
    ("23", "Creuse", "Limoges", 115),
    ("24", "Dordogne", "Bordeaux", 410),
    ("25", "Doubs", "Besançon", 545),
    ("26", "Drôme", "Grenoble", 520),
    ("27", "Eure", "Normandie", 600),
    ("28", "Eure-et-Loir", "Orléans-Tours", 430),
    ("29", "Finistère", "Rennes", 915),
    ("30", "Gard", "Montpellier", 750),
    ("31", "Haute-Garonne", "Toulouse", 1420),
    ("32", "Gers", "Toulouse", 190),
    ("33", "Gironde", "Bordeaux", 1650),
    ("34", "Hérault", "Montpellier", 1190),
    ("35", "Ille-et-Vilaine", "Rennes", 1100),
    ("36", "Indre", "Orléans-Tours", 220),
    ("37", "Indre-et-Loire", "Orléans-Tours", 610),
    ("38", "Isère", "Grenoble", 1280),
    ("39", "Jura", "Besançon", 260),
    ("40", "Landes", "Bordeaux", 420),
    ("41", "Loir-et-Cher", "Orléans-Tours", 330),
    ("42", "Loire", "Lyon", 765),
    ("43", "Haute-Loire", "Clermont-Ferrand", 227),
    ("44", "Loire-Atlantique", "Nantes", 1440),
    ("45", "Loiret", "Orléans-Tours", 680),
    ("46", "Lot", "Toulouse", 175),
    ("47", "Lot-et-Garonne", "Bordeaux", 330),
    ("48", "Lozère", "Montpellier", 76),
    ("49", "Maine-et-Loire", "Nantes", 820),
    ("50", "Manche", "Normandie", 495),
    ("51", "Marne", "Reims", 565),
    ("52", "Haute-Marne", "Reims", 170),
    ("53", "Mayenne", "Nantes", 307),
    ("54", "Meurthe-et-Moselle", "Nancy-Metz", 733),
    ("55", "Meuse", "Nancy-Metz", 184),
    ("56", "Morbihan", "Rennes", 760),
    ("57", "Moselle", "Nancy-Metz", 1045),
    ("58", "Nièvre", "Dijon", 204),
    ("59", "Nord", "Lille", 2610),
    ("60", "Oise", "Amiens", 830),
    ("61", "Orne", "Normandie", 280),
    ("62", "Pas-de-Calais", "Lille", 1460),
    ("63", "Puy-de-Dôme", "Clermont-Ferrand", 660),
    ("64", "Pyrénées-Atlantiques", "Bordeaux", 685),
    ("65", "Hautes-Pyrénées", "Toulouse", 230),
    ("66", "Pyrénées-Orientales", "Montpellier", 480),
    ("67", "Bas-Rhin", "Strasbourg", 1140),
    ("68", "Haut-Rhin", "Strasbourg", 765),
    ("69", "Rhône", "Lyon", 1880),
    ("70", "Haute-Saône", "Besançon", 235),
    ("71", "Saône-et-Loire", "Dijon", 550),
    ("72", "Sarthe", "Nantes", 565),
    ("73", "Savoie", "Grenoble", 435),
    ("74", "Haute-Savoie", "Grenoble", 830),
    ("75", "Paris", "Paris", 2140),
    ("76", "Seine-Maritime", "Normandie", 1255),
    ("77", "Seine-et-Marne", "Créteil", 1420),
    ("78", "Yvelines", "Versailles", 1450),
    ("79", "Deux-Sèvres", "Poitiers", 375),
    ("80", "Somme", "Amiens", 570),
    ("81", "Tarn", "Toulouse", 390),
    ("82", "Tarn-et-Garonne", "Toulouse", 260),
    ("83", "Var", "Nice", 1080),
    ("84", "Vaucluse", "Aix-Marseille", 560),
    ("85", "Vendée", "Nantes", 690),
    ("86", "Vienne", "Poitiers", 440),
    ("87", "Haute-Vienne", "Limoges", 375),
    ("88", "Vosges", "Nancy-Metz", 365),
    ("89", "Yonne", "Dijon", 335),
    ("90", "Territoire de Belfort", "Besançon", 140),
    ("91", "Essonne", "Versailles", 1300),
    ("92", "Hauts-de-Seine", "Versailles", 1620),
    ("93", "Seine-Saint-Denis", "Créteil", 1650),
    ("94", "Val-de-Marne", "Créteil", 1410),
    ("95", "Val-d'Oise", "Versailles", 1250),
    ("971", "Guadeloupe", "Guadeloupe", 385),
    ("972", "Martinique", "Martinique", 360),
    ("973", "Guyane", "Guyane", 290),
    ("974", "La Réunion", "La Réunion", 870),
    ("976", "Mayotte", "Mayotte", 300),
)

OVERSEAS = ("971", "972", "973", "974", "976")

# Share of school-age children relative to the national average (young overseas, old Creuse).
_YOUTH = {"973": 1.9, "976": 2.4, "974": 1.25, "971": 0.95, "972": 0.8, "93": 1.25, "95": 1.15,
          "75": 0.75, "23": 0.7, "48": 0.8, "46": 0.8, "15": 0.8}

# Mean social position index of the département's schools, as a gap to the national mean.
_IPS_GAP = {"75": 15.0, "92": 14.0, "78": 10.0, "74": 6.0, "69": 4.0, "31": 4.0, "91": 3.0,
            "35": 3.0, "44": 3.0, "93": -14.0, "95": -4.0, "59": -5.0, "62": -7.0, "02": -7.0,
            "08": -6.0, "11": -6.0, "66": -6.0, "23": -4.0, "971": -10.0, "972": -9.0,
            "973": -16.0, "974": -10.0, "976": -25.0}

# Number of communes where it is far from the usual few hundred (Paris: its 20 arrondissements).
_COMMUNE_COUNT = {"75": 20, "92": 36, "93": 40, "94": 47, "2A": 124, "2B": 236, "90": 101,
                  "971": 32, "972": 34, "973": 22, "974": 24, "976": 17}

# Standard offset from UTC in seconds; metropolitan France also follows summer time.
_UTC_OFFSET_S = {"971": -4 * 3600, "972": -4 * 3600, "973": -3 * 3600, "974": 4 * 3600,
                 "976": 3 * 3600}


def uai_prefix(departement: str) -> str:
    """The 3 digits opening a school's UAI in this département (Corsica uses 620 and 720)."""
    if departement == "2A":
        return "620"
    if departement == "2B":
        return "720"
    return departement if len(departement) == 3 else "0" + departement


@dataclass(frozen=True, eq=False)
class Geography:
    """Départements and communes as parallel arrays, communes grouped by département."""

    dep_codes: tuple[str, ...]
    dep_academie: npt.NDArray[np.int16]
    academies: tuple[str, ...]
    dep_youth: npt.NDArray[np.float64]  # school-age population weight
    dep_ips_gap: npt.NDArray[np.float64]
    dep_utc_offset_s: npt.NDArray[np.int64]
    dep_summer_time: npt.NDArray[np.bool_]
    commune_codes: tuple[str, ...]
    commune_dep: npt.NDArray[np.int16]
    commune_pop: npt.NDArray[np.float64]
    _commune_key: npt.NDArray[np.float64]  # département index + cumulative share within it

    def sample_commune(self, dep: npt.NDArray[np.integer],
                       u: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        """Pick for each row a commune of its département, with probability its population."""
        idx = np.searchsorted(self._commune_key, dep + u, side="right")
        return np.minimum(idx, len(self.commune_codes) - 1).astype(np.int32)


def build_geography(rng: np.random.Generator) -> Geography:
    """Draw the communes of every département; the département table itself is fixed."""
    codes = tuple(d[0] for d in DEPARTEMENTS)
    academies = tuple(sorted({d[2] for d in DEPARTEMENTS}))
    dep_academie = np.array([academies.index(d[2]) for d in DEPARTEMENTS], dtype=np.int16)
    pop = np.array([d[3] for d in DEPARTEMENTS], dtype=np.float64) * 1000.0
    youth = pop * np.array([_YOUTH.get(c, 1.0) for c in codes])
    gap = np.array([_IPS_GAP[c] if c in _IPS_GAP else rng.normal(0.0, 3.0) for c in codes])
    offset = np.array([_UTC_OFFSET_S.get(c, 3600) for c in codes], dtype=np.int64)
    summer = np.array([c not in _UTC_OFFSET_S for c in codes])

    commune_codes: list[str] = []
    commune_dep: list[npt.NDArray[np.int16]] = []
    commune_pop: list[npt.NDArray[np.float64]] = []
    for i, code in enumerate(codes):
        n = _COMMUNE_COUNT.get(code) or int(rng.integers(180, 720))
        if code == "75":
            suffixes = np.arange(101, 121)
            skew = 0.3
        elif len(code) == 3:
            suffixes = np.arange(1, n + 1)
            skew = 0.9
        else:
            suffixes = np.sort(rng.choice(np.arange(1, 1000), size=n, replace=False))
            skew = 1.05
        width = 5 - len(code)
        commune_codes.extend(f"{code}{s:0{width}d}" for s in suffixes)
        ranks = rng.permutation(n) + 1.0
        weight = ranks ** -skew * rng.lognormal(0.0, 0.3, size=n)
        commune_pop.append(weight / weight.sum() * pop[i])
        commune_dep.append(np.full(n, i, dtype=np.int16))
    cdep = np.concatenate(commune_dep)
    cpop = np.concatenate(commune_pop)
    key = np.empty_like(cpop)
    for i in range(len(codes)):
        m = cdep == i
        share = np.cumsum(cpop[m]) / cpop[m].sum()
        share[-1] = 1.0
        key[m] = i + share
    return Geography(codes, dep_academie, academies, youth, gap, offset, summer,
                     tuple(commune_codes), cdep, cpop, key)
