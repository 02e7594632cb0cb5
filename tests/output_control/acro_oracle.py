"""Run ACRO's ``crosstab`` on tables described in JSON and print the cells each check flags.

Run by ``test_acro_differential.py`` under the interpreter named by ``ACRO_PYTHON`` (ACRO pins
pandas <= 2.3.3, so it lives in its own environment). Imports nothing from this repository.
Usage: python acro_oracle.py spec.json  ->  {"<table>": {"<check>": [[row, column], ...]}}
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import time


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    logging.disable(logging.CRITICAL)
    import pandas as pd
    from acro import ACRO

    df = pd.read_csv(spec["csv"])
    sink = io.StringIO()
    result: dict[str, object] = {}
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        acro = ACRO(suppress=False)
        for i, table in enumerate(spec["tables"]):
            kwargs = {}
            if table.get("values"):
                kwargs = {"values": df[table["values"]], "aggfunc": table["aggfunc"]}
            start = time.perf_counter()
            acro.crosstab(df[table["index"]], df[table["columns"]], **kwargs)
            seconds = time.perf_counter() - start
            record = acro.results.get_index(i)
            frame = record.output[0]
            cells = {
                check: [[str(frame.index[r]), str(frame.columns[c])] for r, c in positions]
                for check, positions in record.sdc["cells"].items()
            }
            result[table["name"]] = {"cells": cells, "seconds": seconds}
    from importlib.metadata import version

    print(json.dumps({"version": version("acro"), "tables": result}))


if __name__ == "__main__":
    main()
