"""anonymization.dp is a pure library: no enclave, no database, and diffprivlib loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_dp_library_loads_no_enclave_or_database_module() -> None:
    code = ("import sys, anonymization.dp; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'alembic', 'psycopg', 'jupyterhub', 'tornado') or "
            "m.startswith('enclave')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_diffprivlib_mechanisms_and_tools_load_even_if_its_models_do_not() -> None:
    from anonymization.dp import _diffprivlib as dpl

    assert dpl.__version__.startswith("0.6")
    assert callable(dpl.tools.histogram) and callable(dpl.tools.quantile)
    assert dpl.mechanisms.Laplace.__module__ == "diffprivlib.mechanisms.laplace"
