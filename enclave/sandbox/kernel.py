"""The kernel launcher: Jupyter runs it inside the workspace sandbox; it execs the nested one.

The read-only kernelspec (:func:`enclave.sandbox.bwrap.kernelspec`, ``interrupt_mode:
message``) runs ``python -m enclave.sandbox.kernel -f {connection_file}``; this module replaces
itself with ``bwrap`` (see :func:`enclave.sandbox.bwrap.kernel_argv`) around
``python -m ipykernel_launcher``. The kernel thus holds no hub token, no hub socket and no
network, cannot create user namespaces, and cannot signal or read the server's processes.
The server must use ``--KernelManager.transport=ipc`` (the connection folder is shared, TCP
ports are not: the kernel has its own network namespace).

Standard library only: this runs inside the sandbox, where only ``enclave.sandbox`` is bound.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from enclave.sandbox.bwrap import BWRAP, kernel_argv


def main(argv: Sequence[str] | None = None) -> None:
    """Exec the kernel in its nested sandbox; never returns on success."""
    parser = argparse.ArgumentParser(prog="enclave.sandbox.kernel",
                                     description="start an IPython kernel in a nested sandbox")
    parser.add_argument("-f", dest="connection_file", required=True)
    args = parser.parse_args(argv)
    connection_file = os.path.abspath(args.connection_file)
    command = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
    full = kernel_argv(connection_file, command, os.environ, cwd=os.getcwd())
    os.execve(BWRAP, full, {"PATH": "/usr/bin:/bin"})  # noqa: S606 - exec bwrap, built argv


if __name__ == "__main__":
    main()
