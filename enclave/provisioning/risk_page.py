"""The risk report as one self-contained HTML page with plots, written next to its JSON.

The page shows the numbers of ``risk_report.json`` and nothing else: per table the
individual-risk distribution before and after protection, the k-anonymity violations per
combination of key variables, the suppressions per variable, what each recoding changed, the
utility measures (IL1s, means, variances, correlations), l-diversity, and the key value
combinations still below k. Plots are inline SVG drawn by this module (bars with their value
in a ``<title>`` and a ``data-value`` attribute); there is no JavaScript, no external asset,
and every text from the report is HTML-escaped. Labels are in French first, then English.
"""

from __future__ import annotations

from html import escape
from typing import Any

BEFORE_COLOUR = "#6a6af4"
AFTER_COLOUR = "#000091"


def fmt(value: Any) -> str:
    """How the page writes a number (the tests compare with the same function)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "oui / yes" if value else "non / no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    return str(value)


def _e(value: Any) -> str:
    return escape(fmt(value), quote=True)


def _label(fr: str, en: str) -> str:
    return f'{escape(fr)} <span lang="en" class="en">/ {escape(en)}</span>'


def bar_chart(title: str, categories: list[str], series: list[tuple[str, str, list[float]]],
              *, horizontal: bool = False) -> str:
    """An SVG bar chart: one group of bars per category, one bar per series (name, colour,
    values). Each bar carries its value in ``data-value`` and ``<title>``."""
    if not categories:
        return ""
    largest = max((v for _, _, values in series for v in values), default=0.0) or 1.0
    n_series = len(series)
    if horizontal:
        bar, gap, label_width, plot = 14, 10, 260, 420
        height = len(categories) * (n_series * bar + gap) + 40.0
        width = label_width + plot + 80
        parts = []
        for i, category in enumerate(categories):
            y0 = 30 + i * (n_series * bar + gap)
            parts.append(f'<text x="{label_width - 6}" y="{y0 + n_series * bar / 2 + 4:.1f}" '
                         f'text-anchor="end" font-size="12">{escape(category)}</text>')
            for s, (name, colour, values) in enumerate(series):
                v = values[i]
                length = plot * v / largest
                y = y0 + s * bar
                parts.append(
                    f'<rect class="bar" data-series="{escape(name, quote=True)}" '
                    f'data-category="{escape(category, quote=True)}" data-value="{_e(v)}" '
                    f'x="{label_width}" y="{y}" width="{length:.1f}" height="{bar - 2}" '
                    f'fill="{colour}"><title>{escape(name)} : {escape(category)} = {_e(v)}'
                    f'</title></rect>'
                    f'<text x="{label_width + length + 4:.1f}" y="{y + bar - 4}" '
                    f'font-size="11">{_e(v)}</text>')
    else:
        group, gap, plot_height = n_series * 26, 22, 200
        width = max(len(categories) * (group + gap) + 60, 300)
        height = plot_height + 90.0
        parts = [f'<line x1="40" y1="{30 + plot_height}" x2="{width - 10}" '
                 f'y2="{30 + plot_height}" stroke="#666"/>']
        for i, category in enumerate(categories):
            x0 = 50 + i * (group + gap)
            parts.append(f'<text x="{x0 + group / 2:.1f}" y="{50 + plot_height}" '
                         f'text-anchor="middle" font-size="11">{escape(category)}</text>')
            for s, (name, colour, values) in enumerate(series):
                v = values[i]
                h = plot_height * v / largest
                x = x0 + s * 26
                top = 30 + plot_height - h
                parts.append(
                    f'<rect class="bar" data-series="{escape(name, quote=True)}" '
                    f'data-category="{escape(category, quote=True)}" data-value="{_e(v)}" '
                    f'x="{x}" y="{top:.1f}" width="22" height="{h:.1f}" fill="{colour}">'
                    f'<title>{escape(name)} : {escape(category)} = {_e(v)}</title></rect>'
                    f'<text x="{x + 11}" y="{top - 3:.1f}" text-anchor="middle" '
                    f'font-size="10">{_e(v)}</text>')
    legend = "".join(
        f'<rect x="{10 + 150 * s}" y="6" width="12" height="12" fill="{colour}"/>'
        f'<text x="{26 + 150 * s}" y="16" font-size="12">{escape(name)}</text>'
        for s, (name, colour, _) in enumerate(series))
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{escape(title, quote=True)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{legend}{"".join(parts)}</svg>'
            f'<figcaption>{escape(title)}</figcaption></figure>')


def _table(caption: str, header: list[str], rows: list[list[Any]], css: str = "") -> str:
    head = "".join(f"<th scope=\"col\">{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<div class="fr-table"><table class="{css}"><caption>{caption}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _risk_section(section: dict[str, Any]) -> str:
    before, after = section["risk_before"], section["risk_after"]
    rows = [
        ["violations (fk < k)", before["violations"], after["violations"]],
        ["violations (Fk < k)", before["violations_weighted"], after["violations_weighted"]],
        ["min fk", before["min_fk"], after["min_fk"]],
        ["ER (1/fk)", before["global_risk"]["expected_reidentifications"],
         after["global_risk"]["expected_reidentifications"]],
        ["ER % (1/fk)", before["global_risk"]["percent"], after["global_risk"]["percent"]],
        ["ER (indivRisk, Fk)", before["global_risk_weighted"]["expected_reidentifications"],
         after["global_risk_weighted"]["expected_reidentifications"]],
        ["ER % (indivRisk, Fk)", before["global_risk_weighted"]["percent"],
         after["global_risk_weighted"]["percent"]],
        ["max r", before["max_individual_risk"], after["max_individual_risk"]],
    ]
    table = _table(_label("Risque global et k-anonymat", "Global risk and k-anonymity"),
                   [_label("Mesure", "Measure"), _label("Avant", "Before"),
                    _label("Après", "After")], rows, "risk-summary")
    bins = [f"[{fmt(b['from'])}, {fmt(b['to'])}" + ("]" if i == len(
        before["individual_risk_histogram"]) - 1 else ")")
        for i, b in enumerate(before["individual_risk_histogram"])]
    chart = bar_chart(
        "Distribution du risque individuel / Individual-risk distribution (records)",
        bins, [("avant / before", BEFORE_COLOUR,
                [b["records"] for b in before["individual_risk_histogram"]]),
               ("après / after", AFTER_COLOUR,
                [b["records"] for b in after["individual_risk_histogram"]])])
    return table + chart


def _subset_section(section: dict[str, Any]) -> str:
    subsets = section.get("violations_by_key_subset") or []
    if not subsets:
        return ""
    names = [" × ".join(s["keys"]) for s in subsets]
    return (f"<h3>{_label('Violations du k-anonymat par combinaison de clés', 'k-anonymity violations per key combination')}</h3>"  # noqa: E501
            + bar_chart(f"Enregistrements avec fk < {section['k']} / records with "
                        f"fk < {section['k']}", names,
                        [("avant / before", BEFORE_COLOUR, [s["before"] for s in subsets]),
                         ("après / after", AFTER_COLOUR, [s["after"] for s in subsets])],
                        horizontal=True))


def _protection_section(section: dict[str, Any]) -> str:
    parts = [f"<h3>{_label('Ce que chaque protection a changé', 'What each protection changed')}</h3>"]  # noqa: E501
    recodings = section.get("recodings")
    if recodings:
        parts.append(_table(
            _label("Filtres et recodages", "Filters and recodings"),
            [_label("Étape", "Step"), _label("Variable", "Variable"),
             _label("Valeurs", "Values"), _label("Modifiées", "Changed")],
            [["filtres / filters", "–", recodings["rows_in"], recodings["rows_filtered_out"]]]
            + [[t["op"], t["variable"], t["values"], t["changed"]]
               for t in recodings["transforms"]], "recodings"))
        if recodings["numeric"]:
            parts.append(_table(
                _label("Variables numériques recodées", "Recoded numeric variables"),
                ["Variable", _label("Moyenne avant", "Mean before"),
                 _label("Moyenne après", "Mean after"),
                 _label("Variance avant", "Variance before"),
                 _label("Variance après", "Variance after"), "IL1s"],
                [[name, m["mean_before"], m["mean_after"], m["variance_before"],
                  m["variance_after"], m["il1s"]] for name, m in recodings["numeric"].items()],
                "recoded-numeric"))
    suppressions = section["suppressions"]
    parts.append(bar_chart("Suppressions locales par variable / Local suppressions per variable",
                           list(suppressions), [("suppressions", AFTER_COLOUR,
                                                 list(suppressions.values()))]))
    if "local_suppression_error" in section:
        parts.append(f"<p class=\"error\">{escape(section['local_suppression_error'])}</p>")
    utility = section.get("utility")
    if utility:
        parts.append(_table(_label("Utilité (suppression locale)", "Utility (local suppression)"),
                            [_label("Mesure", "Measure"), _label("Valeur", "Value")],
                            [["IL1s", utility["il1s"]],
                             ["max |Δ corrélation / correlation|",
                              utility["max_correlation_change"]]], "utility"))
        if utility["moments"]:
            parts.append(_table(
                _label("Moyennes et variances", "Means and variances"),
                ["Variable", _label("Moyenne avant", "Mean before"),
                 _label("Moyenne après", "Mean after"),
                 _label("Variance avant", "Variance before"),
                 _label("Variance après", "Variance after"), "IL1s"],
                [[v, m["mean_original"], m["mean_protected"], m["variance_original"],
                  m["variance_protected"], utility["il1s_by_variable"].get(v)]
                 for v, m in utility["moments"].items()], "moments"))
        if utility["correlation_change"]:
            names = list(utility["correlation_change"])
            parts.append(_table(
                _label("Changement des corrélations", "Change of correlations"),
                ["", *map(escape, names)],
                [[a, *[utility["correlation_change"][a][b] for b in names]] for a in names],
                "correlations"))
    return "".join(parts)


def _ldiversity_section(section: dict[str, Any]) -> str:
    ldiv = section.get("l_diversity") or {}
    if not ldiv:
        return ""
    return _table(_label("l-diversité des variables sensibles", "l-diversity of sensitive "
                         "variables"),
                  ["Variable", "min distinct l", "min entropy l", "min recursive (c,l)",
                   _label("Enregistrements en classes l < 2", "Records in classes l < 2")],
                  [[v, d["min_distinct"], d["min_entropy"], d["min_recursive"],
                    d["records_in_classes_below_2"]] for v, d in ldiv.items()], "ldiversity")


def _remaining_section(section: dict[str, Any]) -> str:
    remaining = section.get("remaining_violating_combinations") or []
    if not remaining:
        return ""
    keys = section["quasi_identifiers"]
    return _table(_label("Combinaisons encore sous k (telles que livrées)",
                         "Combinations still below k (as delivered)"),
                  [*map(escape, keys), "fk", _label("Enregistrements", "Records")],
                  [[*[r["values"][k] for k in keys], r["fk"], r["records"]]
                   for r in remaining], "remaining")


def render_page(report: dict[str, Any]) -> str:
    """The whole page for a report (``enclave-risk-report/1``)."""
    title = (f"Rapport de risque / Risk report — {report['project']} "
             f"v{report['version']}")
    body = [f"<h1>{escape(title)}</h1>",
            "<p>Mesures de sdcMicro (freqCalc, indivRisk, measure_risk, ldiversity, "
            "localSuppression) ; une valeur manquante correspond à toute valeur. "
            '<span lang="en">sdcMicro measures; a missing value matches any value.</span></p>']
    override = report.get("override")
    if override:
        body.append(f'<p class="override"><strong>{_label("Dérogation", "Override")}</strong> '
                    f"{escape(override['by'])} : {escape(override['reason'])}</p>")
    for name, section in report["tables"].items():
        body.append(f'<section data-table="{escape(name, quote=True)}"><h2>{escape(name)} '
                    f"({section['records']} "
                    f"{_label('enregistrements', 'records')}, k = {section['k']})</h2>")
        body.append(f"<p>{_label('Quasi-identifiants', 'Quasi-identifiers')} : "
                    f"{escape(', '.join(section['quasi_identifiers']))}"
                    + (f" ; {_label('poids', 'weight')} : {escape(section['weight'])}"
                       if section.get("weight") else "") + "</p>")
        body.append(_risk_section(section))
        body.append(_subset_section(section))
        body.append(_protection_section(section))
        body.append(_ldiversity_section(section))
        body.append(_remaining_section(section))
        body.append("</section>")
    style = ("body{font-family:Marianne,Arial,sans-serif;margin:2rem;max-width:72rem}"
             "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
             "padding:.25rem .5rem;text-align:right}caption{font-weight:bold;text-align:left}"
             ".en{color:#555}.override{border-left:4px solid #ce0500;padding-left:.5rem}"
             "figure{margin:1rem 0}")
    return ('<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{escape(title)}</title><style>{style}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
