"""Synthetic DEPP data for demonstrations and tests: pupils, evaluations, exams, xAPI traces.

Deterministic (seeded numpy generators), vectorised and streamed to Parquet in bounded memory,
from a thousand to tens of millions of rows. Each dataset is a raw-zone folder with its part
files and a ``metadata.json`` of format ``enclave-raw-dataset/1``, published atomically. This
package imports nothing else from ``enclave``: it only writes files into the folder it is given.
"""

from enclave.demo_data.exceptions import DemoDataError
from enclave.demo_data.generator import MAX_PUPILS, generate
from enclave.demo_data.identifiers import ine_is_well_formed, uai_is_well_formed
from enclave.demo_data.metadata import (
    DATASETS,
    ELEVES,
    EVALUATIONS_REPERES,
    EXAMENS,
    FORMAT,
    TRACES_XAPI,
    DatasetSpec,
    Variable,
)
from enclave.demo_data.writer import WrittenDataset

__all__ = [
    "DATASETS",
    "ELEVES",
    "EVALUATIONS_REPERES",
    "EXAMENS",
    "FORMAT",
    "MAX_PUPILS",
    "TRACES_XAPI",
    "DatasetSpec",
    "DemoDataError",
    "Variable",
    "WrittenDataset",
    "generate",
    "ine_is_well_formed",
    "uai_is_well_formed",
]
