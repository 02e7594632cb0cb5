"""The workspace sandbox: unprivileged accounts, bubblewrap, limits, nested kernels, batch runs.

Layers, each in one module: :mod:`.accounts` (per-person Unix accounts and per-project groups),
:mod:`.limits` (cgroup and rlimit enforcement), :mod:`.bwrap` (every bubblewrap option, for the
workspace sandbox and for the nested kernel sandbox), :mod:`.kernel` (the kernel launcher that
runs inside the workspace sandbox), :mod:`.notebook` (papermill over ``ipc://`` inside the
sandbox) and :mod:`.run` (starting a sandbox from the host, bounded in time).

This package's ``__init__`` imports nothing: :mod:`.bwrap`, :mod:`.kernel` and :mod:`.notebook`
are also imported inside the sandbox, where only this package (not the rest of ``enclave``),
the standard library and the virtual environment exist.
"""
