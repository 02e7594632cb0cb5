"""The dataset catalogue: datasets and variables (kind, type, French label), from the raw zone.

Each raw-zone dataset is a folder ``raw/<dataset>/`` holding Parquet part files and a
``metadata.json`` of format ``enclave-raw-dataset/1`` (see :func:`read_metadata`). Loading checks
that every part file exists, has the declared SHA-256 and row count, and that its Parquet schema
matches the declared variables exactly (names, order, types); any mismatch refuses the whole
load and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from enclave.core import audit, policy
from enclave.core.db import Base, UTCDateTime, utcnow
from enclave.core.exceptions import CatalogueError, NotFound
from enclave.core.files import sha256_bytes, sha256_file
from enclave.core.policy import Actor

METADATA_FORMAT = "enclave-raw-dataset/1"
METADATA_FILE = "metadata.json"


class VariableKind(StrEnum):
    """How a variable bears on disclosure: drives what may be requested and how it is protected."""

    DIRECT_IDENTIFIER = "direct_identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    OTHER = "other"


class DatasetUnit(StrEnum):
    """What one row is: a pupil, a record about a pupil, or an event (learning trace)."""

    PUPIL = "pupil"
    RECORD = "record"
    EVENT = "event"


class Dataset(Base):
    """A dataset of the raw zone, as known to the catalogue."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(20))
    pupil_id_variable: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(200), default="")
    synthetic: Mapped[bool] = mapped_column(default=False)
    rows: Mapped[int] = mapped_column(Integer)
    metadata_sha256: Mapped[str] = mapped_column(String(64))
    files: Mapped[str] = mapped_column(Text)  # JSON list of {name, rows, sha256}
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Variable(Base):
    """A column of a dataset with its disclosure kind, type and labels."""

    __tablename__ = "variables"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"),
                                            index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(30))
    label: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class VariableSpec:
    """A variable as declared in a dataset's metadata."""

    name: str
    type: str
    kind: VariableKind
    label: str
    description: str


@dataclass(frozen=True)
class DatasetSpec:
    """A raw-zone dataset as declared in its ``metadata.json`` and checked against its files."""

    id: str
    label: str
    description: str
    unit: DatasetUnit
    pupil_id_variable: str
    provider: str
    synthetic: bool
    rows: int
    files: tuple[dict[str, Any], ...]
    variables: tuple[VariableSpec, ...]
    folder: Path
    metadata_sha256: str

    def variable(self, name: str) -> VariableSpec:
        """The declared variable ``name``, or CatalogueError naming the known ones."""
        for var in self.variables:
            if var.name == name:
                return var
        raise CatalogueError(f"dataset {self.id} has no variable {name!r}; known: "
                             + ", ".join(v.name for v in self.variables))

    def part_paths(self) -> list[Path]:
        """The Parquet part files, in declared order."""
        return [self.folder / f["name"] for f in self.files]


def _require(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in doc:
        raise CatalogueError(f"{where}: missing key '{key}'")
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogueError(f"{where}: key '{key}' must be {kind.__name__}")
    return value


def read_metadata(folder: Path) -> DatasetSpec:
    """Parse and validate ``folder/metadata.json`` (structure only; see :func:`check_files`)."""
    path = folder / METADATA_FILE
    where = f"raw dataset {folder.name}"
    try:
        raw = path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{where}: no {METADATA_FILE}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{where}: {METADATA_FILE} is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != METADATA_FORMAT:
        raise CatalogueError(f"{where}: metadata format must be '{METADATA_FORMAT}'")
    dataset_id = _require(doc, "dataset", str, where)
    if dataset_id != folder.name:
        raise CatalogueError(f"{where}: metadata names dataset {dataset_id!r}, "
                             "which is not its folder's name")
    try:
        unit = DatasetUnit(_require(doc, "unit", str, where))
    except ValueError:
        raise CatalogueError(f"{where}: unit must be one of "
                             + ", ".join(u.value for u in DatasetUnit)) from None
    variables = []
    seen = set()
    for i, var in enumerate(_require(doc, "variables", list, where)):
        vwhere = f"{where}, variable #{i + 1}"
        if not isinstance(var, dict):
            raise CatalogueError(f"{vwhere}: must be an object")
        name = _require(var, "name", str, vwhere)
        if name in seen:
            raise CatalogueError(f"{where}: variable {name!r} declared twice")
        seen.add(name)
        try:
            kind = VariableKind(_require(var, "kind", str, vwhere))
        except ValueError:
            raise CatalogueError(f"{vwhere} ({name}): kind must be one of "
                                 + ", ".join(k.value for k in VariableKind)) from None
        variables.append(VariableSpec(name, _require(var, "type", str, vwhere), kind,
                                      _require(var, "label", str, vwhere),
                                      str(var.get("description", ""))))
    if not variables:
        raise CatalogueError(f"{where}: declares no variables")
    pupil_var = _require(doc, "pupil_id_variable", str, where)
    if pupil_var not in seen:
        raise CatalogueError(f"{where}: pupil_id_variable {pupil_var!r} is not a declared variable")
    files: list[dict[str, Any]] = []
    for entry in _require(doc, "files", list, where):
        if not isinstance(entry, dict):
            raise CatalogueError(f"{where}: each file entry must be an object")
        name = _require(entry, "name", str, where)
        if "/" in name or name.startswith(".") or not name.endswith(".parquet"):
            raise CatalogueError(f"{where}: file name {name!r} must be a plain *.parquet name")
        if any(f["name"] == name for f in files):
            raise CatalogueError(f"{where}: file {name!r} is listed twice")
        files.append({"name": name, "rows": _require(entry, "rows", int, where),
                      "sha256": _require(entry, "sha256", str, where)})
    if not files:
        raise CatalogueError(f"{where}: lists no files")
    rows = _require(doc, "rows", int, where)
    if rows != sum(f["rows"] for f in files):
        raise CatalogueError(f"{where}: rows ({rows}) is not the sum of the files' rows")
    return DatasetSpec(dataset_id, _require(doc, "label", str, where),
                       str(doc.get("description", "")), unit, pupil_var,
                       str(doc.get("provider", "")), bool(doc.get("synthetic", False)), rows,
                       tuple(files), tuple(variables), folder, sha256_bytes(raw))


def check_files(spec: DatasetSpec, verify_hashes: bool = True) -> None:
    """Check every part file against the metadata: presence, hash, rows and exact schema."""
    expected = [(v.name, v.type) for v in spec.variables]
    for entry, path in zip(spec.files, spec.part_paths(), strict=True):
        where = f"raw dataset {spec.id}, file {entry['name']}"
        if not path.is_file():
            raise CatalogueError(f"{where}: missing")
        if verify_hashes and sha256_file(path) != entry["sha256"]:
            raise CatalogueError(f"{where}: SHA-256 differs from the metadata (file changed "
                                 "after deposit)")
        try:
            meta = pq.read_metadata(path)
            schema = pq.read_schema(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise CatalogueError(f"{where}: not a readable Parquet file ({exc})") from None
        actual = [(f.name, str(f.type)) for f in schema]
        if actual != expected:
            diff = [f"{e} != {a}" for e, a in zip(expected, actual, strict=False) if e != a]
            raise CatalogueError(f"{where}: schema does not match the metadata: "
                                 + ("; ".join(diff[:5]) if diff else
                                    f"{len(actual)} columns instead of {len(expected)}"))
        if meta.num_rows != entry["rows"]:
            raise CatalogueError(f"{where}: has {meta.num_rows} rows, metadata says "
                                 f"{entry['rows']}")


def scan_raw_zone(raw_dir: Path, verify_hashes: bool = True) -> list[DatasetSpec]:
    """Read and check every dataset folder of the raw zone; the first problem raises."""
    if not raw_dir.is_dir():
        raise CatalogueError(f"the raw zone {raw_dir} does not exist: run 'enclave init'")
    specs = []
    for folder in sorted(p for p in raw_dir.iterdir() if p.is_dir()
                         and not p.name.startswith(".")):
        spec = read_metadata(folder)
        check_files(spec, verify_hashes)
        specs.append(spec)
    return specs


def load_catalogue(session: Session, actor: Actor, raw_dir: Path) -> list[DatasetSpec]:
    """Load or refresh every raw-zone dataset's checked metadata, audited, all or nothing.

    A dataset that left the raw zone stays catalogued (projects refer to it); building an
    extract from it then fails on its missing files.
    """
    policy.check_load_catalogue(actor)
    specs = scan_raw_zone(raw_dir)
    for spec in specs:
        session.execute(delete(Variable).where(Variable.dataset_id == spec.id))
        dataset = session.get(Dataset, spec.id) or Dataset(id=spec.id)
        dataset.label, dataset.description = spec.label, spec.description
        dataset.unit, dataset.pupil_id_variable = spec.unit.value, spec.pupil_id_variable
        dataset.provider, dataset.synthetic, dataset.rows = spec.provider, spec.synthetic, spec.rows
        dataset.metadata_sha256 = spec.metadata_sha256
        dataset.files = json.dumps(list(spec.files))
        dataset.loaded_at = utcnow()
        session.add(dataset)
        session.flush()
        for pos, var in enumerate(spec.variables):
            session.add(Variable(dataset_id=spec.id, position=pos, name=var.name, type=var.type,
                                 kind=var.kind.value, label=var.label,
                                 description=var.description))
        audit.record(session, actor=actor.username, action="catalogue.dataset_loaded",
                     object_type="dataset", object_id=spec.id,
                     details={"rows": spec.rows, "variables": len(spec.variables),
                              "metadata_sha256": spec.metadata_sha256})
    return specs


def dataset_spec(session: Session, raw_dir: Path, dataset_id: str) -> DatasetSpec:
    """The checked spec of a catalogued dataset; its files must still match the catalogue."""
    row = session.get(Dataset, dataset_id)
    if row is None:
        raise NotFound(f"no dataset {dataset_id!r} in the catalogue")
    spec = read_metadata(raw_dir / dataset_id)
    if spec.metadata_sha256 != row.metadata_sha256:
        raise CatalogueError(f"raw dataset {dataset_id} changed since it was catalogued; "
                             "reload the catalogue")
    check_files(spec)
    return spec


def list_variables(session: Session, dataset_id: str) -> list[Variable]:
    """The catalogued variables of a dataset in column order."""
    return list(session.execute(select(Variable).where(Variable.dataset_id == dataset_id)
                                .order_by(Variable.position)).scalars())
