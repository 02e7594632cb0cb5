"""The release request a researcher writes from a notebook: which outputs, why, what exceptions.

A kernel cannot call the review workflow (no database, no network in the sandbox), so a notebook
states its request as a small file in the outputs area, ``release_request.json``; the
researcher then submits it from the portal (the button of the outputs page), and the workflow
(:mod:`output_control.review.manifests`) reads it with :func:`parse_request_manifest`, each
exception request becoming the file's own field (rules and reason), which controllers read
next to the rules it concerns. Format ``enclave-release-request/1``::

    {"format": "enclave-release-request/1",
     "justification": "why these outputs are needed (the project's purpose)",
     "files": [
       {"name": "scores_by_level.csv", "justification": "table 2 of the paper",
        "exception": null},
       {"name": "scores_p90.csv", "justification": "...",
        "exception": {"rules": ["single_unit_values"],
                      "reason": "why this flagged output is safe or needed anyway"}}]}

Every field is validated, unknown keys and duplicate keys are refused, and names follow the
review workflow's rule for output files (no path, no sidecar). An exception request names the
rules it asks to be waived (rule names of the policy engine) and gives a reason; it does not
change the automatic verdict, it tells the two controllers what the researcher asks of them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from output_control.exceptions import OutputControlError
from output_control.files import read_limited, strict_json, write_atomic
from output_control.rules import RULES

MANIFEST_FORMAT = "enclave-release-request/1"
MANIFEST_NAME = "release_request.json"
MAX_MANIFEST_BYTES = 256 * 1024
MAX_TEXT = 5000
MIN_REASON = 20
MAX_FILES = 100
#: Rules an exception may name besides the policy engine's.
EXTRA_RULES = ("file_integrity", "differential_privacy")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,150}")
_SIDECAR = ".sidecar.json"
_TOP_KEYS = {"format", "justification", "files"}
_FILE_KEYS = {"name", "justification", "exception"}
_EXCEPTION_KEYS = {"rules", "reason"}


class InvalidRequestManifest(OutputControlError, ValueError):
    """A release request file is malformed; the message says which field and why."""


@dataclass(frozen=True)
class ExceptionRequest:
    """The rules a researcher asks controllers to waive for one file, and why."""

    rules: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class RequestedFile:
    """One output asked for release, with its justification and optional exception request."""

    name: str
    justification: str
    exception: ExceptionRequest | None = None

    def review_text(self) -> str:
        """The justification as controllers read it, the exception request stated after it."""
        if self.exception is None:
            return self.justification
        return (f"{self.justification}\n\nException requested for "
                f"{', '.join(self.exception.rules)}: {self.exception.reason}")


@dataclass(frozen=True)
class ReleaseRequest:
    """A parsed, validated release request."""

    justification: str
    files: tuple[RequestedFile, ...]

    def submission(self) -> tuple[dict[str, str], str]:
        """``(files, justification)`` as ``output_control.review.workflow.submit_request``
        takes them: per file its justification with any exception request spelled out."""
        return {f.name: f.review_text() for f in self.files}, self.justification

    def to_dict(self) -> dict[str, Any]:
        """The manifest document (format ``enclave-release-request/1``)."""
        return {
            "format": MANIFEST_FORMAT,
            "justification": self.justification,
            "files": [
                {"name": f.name, "justification": f.justification,
                 "exception": None if f.exception is None else
                 {"rules": list(f.exception.rules), "reason": f.exception.reason}}
                for f in self.files
            ],
        }


def parse_request_manifest(data: bytes) -> ReleaseRequest:
    """Validate manifest bytes; raise InvalidRequestManifest naming the first problem."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidRequestManifest(f"the request file is over {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = strict_json(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequestManifest(f"the request file is not valid JSON: {exc}") from None
    return build_request(doc)


def build_request(doc: object) -> ReleaseRequest:
    """A ReleaseRequest from a decoded manifest document (validated as the parser does)."""
    top = _object(doc, _TOP_KEYS, "the request")
    if top["format"] != MANIFEST_FORMAT:
        raise InvalidRequestManifest(f"unknown format {str(top['format'])[:40]!r} (expected "
                                     f"{MANIFEST_FORMAT!r})")
    justification = _text(top["justification"], "justification")
    files = top["files"]
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_FILES:
        raise InvalidRequestManifest(f"'files' must list 1 to {MAX_FILES} outputs")
    parsed = tuple(_file(entry, i) for i, entry in enumerate(files))
    names = [f.name for f in parsed]
    if len(set(names)) != len(names):
        raise InvalidRequestManifest("a file is listed twice")
    return ReleaseRequest(justification=justification, files=parsed)


def read_request_manifest(outputs_dir: Path | str) -> ReleaseRequest:
    """Read ``release_request.json`` of an outputs area (a symlink or oversize file refused)
    and check that every file it names is a regular file there."""
    folder = Path(outputs_dir)
    data = read_limited(folder / MANIFEST_NAME, MAX_MANIFEST_BYTES, "release request")
    request = parse_request_manifest(data)
    _check_present(request, folder)
    return request


def write_request(
    files: Mapping[str, str | tuple[str, Mapping[str, Any]]],
    justification: str,
    *,
    outputs_dir: Path | str | None = None,
) -> ReleaseRequest:
    """Write ``release_request.json`` into the outputs area (notebook side).

    ``files`` maps each output's file name to its justification, or to ``(justification,
    {"rules": [...], "reason": "..."})`` to ask for an exception. Every file must exist in the
    outputs area. Returns the validated request.
    """
    folder = Path(outputs_dir or os.environ.get("ENCLAVE_OUTPUTS_DIR") or "outputs")
    entries: list[dict[str, Any]] = []
    for name, value in files.items():
        if isinstance(value, tuple):
            text, exception = value
            entries.append({"name": name, "justification": text, "exception": dict(exception)})
        else:
            entries.append({"name": name, "justification": value, "exception": None})
    request = build_request({"format": MANIFEST_FORMAT, "justification": justification,
                             "files": entries})
    _check_present(request, folder)
    body = json.dumps(request.to_dict(), ensure_ascii=False, indent=2) + "\n"
    write_atomic(folder / MANIFEST_NAME, body.encode("utf-8"))
    print(f"Wrote {folder / MANIFEST_NAME}: {len(request.files)} file(s); submit it from the "
          "portal to start the review.")
    return request


def overview(outputs_dir: Path | str | None = None,
             policy: str = "default") -> list[dict[str, str]]:
    """Each file of the outputs area with what the automatic checks say of it now, as the
    review will see it: a table's outcome under ``policy``, a figure's proof that it is the
    drawing of its checked table, a DP result's declared spend; anything else is refused."""
    from output_control.analysis.charts import FIGURE_SUFFIX, check_figure
    from output_control.analysis.dp_outputs import is_dp_sidecar, read_dp_output
    from output_control.exceptions import OutputRejected
    from output_control.policy import load_policy
    from output_control.sidecar import check_output

    folder = Path(outputs_dir or os.environ.get("ENCLAVE_OUTPUTS_DIR") or "outputs")
    rules = load_policy(policy)
    rows = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith(_SIDECAR) or path.name == MANIFEST_NAME or path.is_dir():
            continue
        side = folder / (path.name + _SIDECAR)
        try:
            if path.name.endswith(FIGURE_SUFFIX):
                table, _ = check_figure(path)
                kind, status = "figure", f"drawn from {table.file_name}"
            elif side.is_file() and not side.is_symlink() and is_dp_sidecar(
                    read_limited(side, 1 << 20, "sidecar")):
                declared = read_dp_output(path)
                kind = "differential privacy"
                status = (f"epsilon {declared.epsilon:g} charged to {declared.dataset} when "
                          "the request is submitted")
            elif path.name.endswith(".csv"):
                result = check_output(path, rules)
                kind, status = "table", result.outcome.value
                broken = [v.message for v in result.verdicts if v.rule == "file_integrity"
                          and v.outcome.value == "fail"]
                status += f" ({broken[0]})" if broken else ""
            else:
                raise OutputRejected("not a checked output (a CSV table with its sidecar, a "
                                     "PNG figure or a DP result)")
        except OutputRejected as exc:
            kind, status = "refused", exc.reason
        rows.append({"file": path.name, "kind": kind, "automatic checks": status})
    return rows


def _check_present(request: ReleaseRequest, folder: Path) -> None:
    for f in request.files:
        path = folder / f.name
        if path.is_symlink() or not path.is_file():
            raise InvalidRequestManifest(f"{f.name} is not a regular file of the outputs area")


def _file(entry: object, i: int) -> RequestedFile:
    where = f"files[{i}]"
    spec = _object(entry, _FILE_KEYS, where)
    name = spec["name"]
    if (not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name
            or name.endswith(_SIDECAR) or name == MANIFEST_NAME):
        raise InvalidRequestManifest(f"{where}.name {str(name)[:60]!r} is not an output file "
                                     "name (letters, digits, '_.-'; not a sidecar)")
    text = _text(spec["justification"], f"{where}.justification")
    exception = None
    if spec["exception"] is not None:
        raw = _object(spec["exception"], _EXCEPTION_KEYS, f"{where}.exception")
        rules = raw["rules"]
        known = (*RULES, *EXTRA_RULES)
        if (not isinstance(rules, list) or not rules or len(set(rules)) != len(rules)
                or not all(isinstance(r, str) and r in known for r in rules)):
            raise InvalidRequestManifest(f"{where}.exception.rules must list distinct rule "
                                         f"names among {sorted(known)}")
        reason = _text(raw["reason"], f"{where}.exception.reason")
        if len(reason.strip()) < MIN_REASON:
            raise InvalidRequestManifest(f"{where}.exception.reason must explain the request "
                                         f"in at least {MIN_REASON} characters")
        exception = ExceptionRequest(rules=tuple(rules), reason=reason)
    return RequestedFile(name=name, justification=text, exception=exception)


def _object(value: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequestManifest(f"{what} must be a JSON object")
    missing, unknown = sorted(keys - set(value)), sorted(set(value) - keys)
    if missing:
        raise InvalidRequestManifest(f"{what} lacks {missing}")
    if unknown:
        raise InvalidRequestManifest(f"{what} has unknown keys {[k[:40] for k in unknown]}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise InvalidRequestManifest(f"{what} must be non-empty text of at most {MAX_TEXT} "
                                     "characters")
    return value


