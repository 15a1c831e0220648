"""Manifests: stable sharding, atomic version-stamped shards, readers that refuse other major versions."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import manifest, record
from curate.errors import SchemaVersionError
from curate.names import identity_id, match_key


def _rows(names: list[str]) -> pa.Table:
    rows = [
        {
            "image_id": f"{i:064x}",
            "identity_id": identity_id(name),
            "identity_name": name,
            "source": f"/x/{i}.jpg",
            "path": f"/x/{i}.jpg",
            "status": "ok",
            "reason": "",
        }
        for i, name in enumerate(names)
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema(list(record.BASE_COLUMNS.items())))


def test_shard_of_is_stable_and_spreads_identities():
    # sha1-based: the same id gives the same shard in every process (Python's hash() is salted)
    assert manifest.shard_of("jennifer-aniston-83f06177", 8) == manifest.shard_of(
        "jennifer-aniston-83f06177", 8
    )
    shards = {manifest.shard_of(identity_id(f"person {i}"), 8) for i in range(200)}
    assert shards == set(range(8))


def test_match_key_and_identity_id_fold_spellings_and_stay_safe():
    assert match_key("Jennifer_Aniston") == match_key("jennifer  ANISTON.") == "jennifer aniston"
    assert match_key("Beyoncé Knowles") == "beyonce knowles"
    assert identity_id("Jennifer_Aniston") == identity_id("jennifer aniston")
    assert identity_id("Jennifer Aniston") != identity_id("Jennifer Anniston")
    for hostile in ["..", "a/b", "../../etc", "", "李小龍", "con"]:
        ident = identity_id(hostile)
        assert ident and set(ident) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"), ident
    assert identity_id("..") != identity_id(".")


def test_write_read_roundtrip_and_pandas_reads_the_folder(tmp_path):
    names = ["Ann", "Bob", "Cy", "Dee"]
    table = _rows(names)
    for shard in range(2):
        mask = [manifest.shard_of(i, 2) == shard for i in table.column("identity_id").to_pylist()]
        manifest.write_shard(table.filter(pa.array(mask)), manifest.shard_path(tmp_path, "collect", shard))
    # side files that readers must not see
    (tmp_path / "collect" / "_stats").mkdir()
    (tmp_path / "collect" / "_stats" / "00000.json").write_text("{}")
    frame = pd.read_parquet(tmp_path / "collect")
    assert sorted(frame.identity_name) == names
    merged = manifest.read_stage(tmp_path, "collect")
    assert merged.num_rows == 4
    assert not list((tmp_path / "collect").glob(".*tmp"))  # no temporary files left behind


def test_reader_refuses_unknown_major_version(tmp_path):
    table = _rows(["Ann"])
    path = tmp_path / "s" / "00000.parquet"
    manifest.write_shard(table, path)
    assert manifest.read_shard(path).num_rows == 1
    meta = {manifest.META_VERSION: b"2.0", manifest.META_KIND: b"images"}
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(SchemaVersionError, match=r"2\.0"):
        manifest.read_shard(path)
    pq.write_table(table.replace_schema_metadata({}), path)
    with pytest.raises(SchemaVersionError, match="not a curate manifest"):
        manifest.read_shard(path)


def test_add_columns_types_and_set_status():
    table = _rows(["Ann", "Bob"])
    table = record.add_columns(table, {"score": [None, None]}, {"score": pa.float32()})
    assert table.schema.field("score").type == pa.float32()  # all-null column keeps its declared type
    table = record.set_status(table, [1], record.Status.NO_FACE, "no face found")
    assert table.column("status").to_pylist() == ["ok", "no_face"]
    assert table.column("reason").to_pylist() == ["", "no face found"]
    with pytest.raises(KeyError):
        record.add_columns(table, {"undeclared": [1, 2]}, {})
