"""Where the hub's and the workspaces' Unix sockets live.

A socket's path travels as the host part of an ``http+unix://`` URL, and URL libraries lower
the case of host names (aiohttp does): a socket under ``/srv/Enclave/run`` would be dialled
as ``/srv/enclave/run`` and not found. Sockets therefore live under the enclave's ``run``
folder when its path has no capital letter, and otherwise under ``/run/enclave-<12 hex>``
(root-owned, mode 0711), derived from the run folder so that a restarted hub finds them again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from enclave.core.exceptions import SettingsError

#: The longest Unix socket path Linux accepts is 107 bytes; keep a margin for file names.
MAX_BASE_LENGTH = 80


def socket_base(run_dir: Path) -> Path:
    """The folder holding ``hub/hub.sock`` and ``ws/<id>/s/jupyter.sock`` (created, 0711)."""
    run_dir = Path(run_dir)
    text = str(run_dir)
    if text == text.lower() and len(text) <= MAX_BASE_LENGTH:
        base = run_dir
    else:
        base = Path("/run") / ("enclave-" + hashlib.sha256(text.encode()).hexdigest()[:12])
    try:
        base.mkdir(mode=0o711, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"cannot create the socket folder {base} ({exc.strerror}); the "
                            "enclave's run folder has capital letters or a long path, so its "
                            "sockets go under /run, which needs root") from None
    return base
