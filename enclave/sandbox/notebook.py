"""papermill inside the workspace sandbox, talking to its kernel over ZeroMQ ``ipc://``.

The nested kernel sandbox has its own network namespace, so papermill's default TCP transport
cannot reach it; the kernel manager here uses ``ipc`` sockets in :data:`bwrap.RUNTIME`, the
one folder both sandboxes share. Run inside the sandbox as
``python -m enclave.sandbox.notebook INPUT OUTPUT --kernel NAME --cwd DIR --parameters JSON``.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import Sequence

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from enclave.sandbox.bwrap import RUNTIME


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose connection file and ``ipc://`` sockets live in the runtime folder."""

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("connection_file")
    def _connection_file_default(self) -> str:
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR", RUNTIME)
        return os.path.join(runtime, f"kernel-{uuid.uuid4()}.json")


def main(argv: Sequence[str] | None = None) -> None:
    """Execute one notebook with papermill; the output is saved even if a cell fails."""
    import papermill

    parser = argparse.ArgumentParser(prog="enclave.sandbox.notebook")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--parameters", default="{}", help="a JSON object")
    parser.add_argument("--start-timeout", type=int, default=60)
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    if not isinstance(parameters, dict):
        parser.error("--parameters must be a JSON object")
    papermill.execute_notebook(args.input, args.output, parameters=parameters,
                               kernel_name=args.kernel, cwd=args.cwd, progress_bar=False,
                               start_timeout=args.start_timeout,
                               kernel_manager_class=IpcKernelManager)


if __name__ == "__main__":
    main()
