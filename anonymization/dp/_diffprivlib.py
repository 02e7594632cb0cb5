"""Load diffprivlib's mechanisms and tools without its machine-learning models.

``import diffprivlib`` also imports ``diffprivlib.models``, which imports private names of
scikit-learn; diffprivlib 0.6.6's random forest imports ``DOUBLE`` from ``sklearn.tree._tree``,
which scikit-learn 1.9 removed, so the whole package fails to import although the mechanisms and
tools we use never touch scikit-learn's models. When the normal import fails for that reason,
this module registers a package shell for ``diffprivlib`` (its real ``__path__``, without
``models``) and imports the submodules we need from the installed files, unchanged. When the
normal import works, the real package is used as is.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from importlib import metadata
from typing import Any

_LOCK = threading.Lock()
_SUBMODULES = ("utils", "validation", "accountant", "mechanisms", "tools")


def _load() -> types.ModuleType:
    with _LOCK:
        try:
            return importlib.import_module("diffprivlib")
        except ImportError:
            spec = importlib.util.find_spec("diffprivlib")
            if spec is None or not spec.submodule_search_locations:
                raise
        shell = types.ModuleType("diffprivlib", "diffprivlib without diffprivlib.models")
        shell.__path__ = list(spec.submodule_search_locations)
        shell.__file__ = spec.origin
        shell.__package__ = "diffprivlib"
        sys.modules["diffprivlib"] = shell
        for name in _SUBMODULES:
            setattr(shell, name, importlib.import_module(f"diffprivlib.{name}"))
        return shell


_dpl = _load()

mechanisms: Any = importlib.import_module("diffprivlib.mechanisms")
tools: Any = importlib.import_module("diffprivlib.tools")
BudgetAccountant: Any = importlib.import_module("diffprivlib.accountant").BudgetAccountant
PrivacyLeakWarning: type[Warning] = importlib.import_module("diffprivlib.utils").PrivacyLeakWarning
__version__: str = str(getattr(_dpl, "__version__", "")) or metadata.version("diffprivlib")
