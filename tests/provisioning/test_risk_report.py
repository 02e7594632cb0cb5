"""k-anonymity measurement and local suppression of a written table, on a hand-computed case."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.risk import key_frequencies
from enclave.provisioning.risk_report import protect_table
from enclave.provisioning.spec import DatasetRules


def _write(tmp_path: Path) -> Path:
    # (F, CM2) x3, (M, CM2) x3, (F, 6e) x1: with k = 3 only the last record violates.
    path = tmp_path / "eleves.parquet"
    pq.write_table(pa.table({
        "eleve": [f"p{i}" for i in range(7)],
        "sexe": ["F", "F", "F", "M", "M", "M", "F"],
        "niveau": ["CM2", "CM2", "CM2", "CM2", "CM2", "CM2", "6e"],
        "score": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]}), path)
    return path


def test_local_suppression_reaches_k_and_reports_what_it_changed(tmp_path: Path) -> None:
    path = _write(tmp_path)
    section = protect_table(path, DatasetRules(quasi_identifiers=("sexe", "niveau"), k=3))
    assert section["records"] == 7
    assert section["violations_before"] == 1
    # Before: six records with fk = 3 and one with fk = 1: ER = 6/3 + 1 = 3.
    assert section["global_risk_before"]["expected_reidentifications"] == pytest.approx(3.0)
    assert section["global_risk_before"]["percent"] == pytest.approx(300 / 7)
    # niveau comes second, so it is suppressed first: (F, NA) then matches the three
    # (F, CM2), each of which now has fk = 4; ER = 4 * 1/4 + 3 * 1/3 = 2.
    assert section["suppressions"] == {"sexe": 0, "niveau": 1}
    assert section["violations_after"] == 0
    assert section["global_risk_after"]["expected_reidentifications"] == pytest.approx(2.0)
    table = pq.read_table(path)
    assert table.column("niveau").to_pylist() == ["CM2"] * 6 + [None]
    assert table.column("sexe").to_pylist() == ["F", "F", "F", "M", "M", "M", "F"]
    assert table.column("score").to_pylist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


@pytest.mark.parametrize(("order", "suppressed"), [
    (("sexe", "niveau"), "niveau"), (("niveau", "sexe"), "sexe")])
def test_importance_follows_the_declared_order(tmp_path: Path, order: tuple[str, str],
                                               suppressed: str) -> None:
    # (F, CM2) x3, (M, 6e) x3, (F, 6e) x1: suppressing either key of the last record reaches
    # k = 3, so the last declared quasi-identifier is the one suppressed.
    path = tmp_path / "eleves.parquet"
    pq.write_table(pa.table({"sexe": ["F", "F", "F", "M", "M", "M", "F"],
                             "niveau": ["CM2", "CM2", "CM2", "6e", "6e", "6e", "6e"]}), path)
    section = protect_table(path, DatasetRules(quasi_identifiers=order, k=3))
    assert section["suppressions"] == {o: int(o == suppressed) for o in order}
    assert section["violations_after"] == 0
    assert pq.read_table(path).column(suppressed).to_pylist()[-1] is None


def test_without_local_suppression_the_file_is_untouched(tmp_path: Path) -> None:
    path = _write(tmp_path)
    before = path.read_bytes()
    section = protect_table(path, DatasetRules(quasi_identifiers=("sexe", "niveau"), k=3,
                                               local_suppression=False))
    assert section["violations_before"] == section["violations_after"] == 1
    assert section["suppressions"] == {"sexe": 0, "niveau": 0}
    assert path.read_bytes() == before


def test_an_empty_table_has_no_violation(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"eleve": pa.array([], pa.string()),
                             "sexe": pa.array([], pa.string())}), path)
    section = protect_table(path, DatasetRules(quasi_identifiers=("sexe",), k=5))
    assert section["records"] == 0 and section["violations_after"] == 0


def test_fewer_records_than_k_stay_as_they_are_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"sexe": ["F", "M"], "niveau": ["CP", "CP"]}), path)
    before = path.read_bytes()
    section = protect_table(path, DatasetRules(quasi_identifiers=("sexe", "niveau"), k=5))
    assert section["violations_before"] == section["violations_after"] == 2
    assert "fewer than k=5" in section["local_suppression_error"]
    assert path.read_bytes() == before


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from("FM"), st.sampled_from(["CP", "CE1", "CM2"]),
                               st.integers(2010, 2013)), min_size=4, max_size=40),
       k=st.integers(2, 4))
def test_the_report_matches_the_written_file(rows: list[tuple[str, str, int]], k: int) -> None:
    """The report's counts are those of the file as written, and local suppression reaches k
    as ``key_frequencies`` (sdcMicro's ``freqCalc``) counts it: no violation remains."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.parquet"
        sexe, niveau, annee = zip(*rows, strict=True)
        pq.write_table(pa.table({"sexe": list(sexe), "niveau": list(niveau),
                                 "annee": pa.array(annee, pa.int16())}), path)
        keys = ("sexe", "niveau", "annee")
        section = protect_table(path, DatasetRules(quasi_identifiers=keys, k=k))
        table = pq.read_table(path)
        assert table.schema.field("annee").type == pa.int16()
        frame = table.to_pandas()
        assert key_frequencies(frame, list(keys)).violations(k) == section["violations_after"]
        assert section["violations_after"] == 0
        for subset in section["violations_by_key_subset"]:  # counted on the file as written
            assert key_frequencies(frame, subset["keys"]).violations(k) == subset["after"]
        suppressed = sum(table.column(key).null_count for key in keys)
        assert suppressed == sum(section["suppressions"].values())


def test_a_fully_suppressed_record_counts_for_complete_ones_so_k_is_reached(
        tmp_path: Path) -> None:
    # (F, CP) x3 and (M, CE1), k = 4: local_suppression blanks the M record, which then
    # matches everyone; key_frequencies counts it for the complete records too (sdcMicro's
    # documented freqCalc definition), so the three F records reach fk = 4 and k holds.
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"sexe": ["F", "F", "F", "M"], "niveau": ["CP"] * 3 + ["CE1"]}),
                   path)
    section = protect_table(path, DatasetRules(quasi_identifiers=("sexe", "niveau"), k=4))
    assert section["suppressions"] == {"sexe": 1, "niveau": 1}
    assert section["violations_before"] == 4
    assert section["violations_after"] == 0
    assert section["risk_after"]["min_fk"] == 4
    assert section["remaining_violating_combinations"] == []
