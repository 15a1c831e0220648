"""The describe and dedup stages: decisions on controlled descriptors, then real CFP photos and copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from curate import cli
from curate.config import build_config
from curate.errors import ConfigError
from curate.hashing import hex_to_code
from curate.record import BASE_COLUMNS
from curate.stage import local_context
from curate.stages.dedup import COLUMNS, DedupStage
from curate.stages.describe import DescribeStage

DIM = 16


def table(rows: list[dict], extra: dict[str, pa.DataType] | None = None) -> pa.Table:
    """An image manifest from dicts (missing base fields filled in)."""
    types = dict(BASE_COLUMNS) | (extra or {})
    full = [{"status": "ok", "reason": "", "path": None, **row} for row in rows]
    for row in full:
        row.setdefault("identity_name", row["identity_id"].upper())
        row.setdefault("source", f"http://example.org/{row['image_id']}.jpg")
    return pa.Table.from_pylist(full, schema=pa.schema(list(types.items())))


def unit(*parts: tuple[int, float]) -> np.ndarray:
    """A unit vector mixing basis directions: unit((0, 0.9), (1, 0.436)) has cosine 0.9 with e0."""
    v = np.zeros(DIM, np.float32)
    for axis, weight in parts:
        v[axis] = weight
    return v / np.linalg.norm(v)


def run_dedup(
    work: Path, shards: dict[int, tuple[pa.Table, np.ndarray]], thumbs: dict | None = None, **settings: object
) -> dict:
    """Store vectors (and thumbnails, if given) as the describe stage would, then run dedup."""
    for shard, (_, vectors) in shards.items():
        ctx = local_context(work, "describe", shard, len(shards))
        ctx.write_vectors("handcrafted", vectors)
        if thumbs is not None:
            ctx.write_vectors("thumbnail", thumbs[shard])
    defaults = {
        "max_hamming_bits": 4,
        "review_max_hamming_bits": 10,
        "min_cosine": 0.9,
        "review_min_cosine": 0.8,
    }
    defaults["verify"] = thumbs is not None
    stage = DedupStage(build_config(DedupStage.Config, defaults | settings))
    tables = {shard: t for shard, (t, _) in shards.items()}
    return stage.run_all(tables, local_context(work, "dedup", None, len(shards)))


def by_id(tables: dict) -> dict[str, dict]:
    """Output rows keyed by image_id."""
    return {row["image_id"]: row for t in tables.values() for row in t.to_pylist()}


FAR = 0x5555_5555_5555_5555  # 32 bits away from 0 and from the small codes below
OTHER = 0x3333_3333_3333_3333  # 32 bits away from FAR and from 0


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"max_hamming_bits": 12, "review_max_hamming_bits": 8}, "review_max_hamming_bits"),
        ({"min_cosine": 0.8, "review_min_cosine": 0.9}, "review_min_cosine"),
        ({"min_cosine": 1.5}, "min_cosine"),
        ({"hashes": ["md5"]}, "hashes"),
        ({"hashes": [], "embedding": ""}, "hashes"),
        ({"index": "hnsw"}, "index"),
        ({"nprobe": 0}, "nprobe"),
        ({"min_aligned_ncc": 0.9, "review_min_aligned_ncc": 0.95}, "review_min_aligned_ncc"),
        ({"confirm_conflicts_with": "facenet"}, "confirm_conflicts_with"),
        ({"conflict_min_face_ncc": 1.2}, "conflict_min_face_ncc"),
    ],
)
def test_bad_thresholds_are_config_errors(settings: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_config(DedupStage.Config, settings, where="dedup.")
    assert error.value.key == f"dedup.{key}"


def identity_a_rows() -> tuple[list[dict], np.ndarray]:
    """a1-a3: one photo three times (cosine >= 0.95), a2 best ranked; a4: another photo."""
    rows = [
        {"image_id": "a1", "identity_id": "a", "rank_score": 0.5, "phash_code": 0},
        {"image_id": "a2", "identity_id": "a", "rank_score": 0.9, "phash_code": 0b11},
        {"image_id": "a3", "identity_id": "a", "rank_score": None, "phash_code": 0b101},
        {"image_id": "a4", "identity_id": "a", "rank_score": 0.7, "phash_code": FAR},
    ]
    vectors = np.stack([unit((0, 1)), unit((0, 0.97), (1, 0.24)), unit((0, 0.96), (2, 0.28)), unit((5, 1))])
    return rows, vectors


RANKED = {"rank_score": pa.float32(), "phash_code": pa.int64()}


def test_within_identity_cluster_keeps_the_best_ranked(tmp_path: Path) -> None:
    rows, vectors = identity_a_rows()
    out = by_id(run_dedup(tmp_path, {0: (table(rows, RANKED), vectors)}))
    assert [out[k]["status"] for k in ("a1", "a2", "a3", "a4")] == ["duplicate", "ok", "duplicate", "ok"]
    assert out["a1"]["dup_of"] == out["a3"]["dup_of"] == "a2"
    assert "a2" in out["a1"]["reason"] and "http://example.org/a2.jpg" in out["a1"]["reason"]
    assert out["a1"]["dup_cluster"] == out["a2"]["dup_cluster"] == out["a3"]["dup_cluster"] is not None
    assert out["a4"]["dup_cluster"] is None and out["a2"]["dup_of"] is None
    assert out["a1"]["dup_distance"] == pytest.approx(1 - 0.97, abs=1e-3)
    assert out["a3"]["dup_hamming_bits"] == 2  # 0b101 vs 0b11
    assert not any(out[k]["needs_review"] for k in out)


def test_same_kept_set_whatever_the_row_order(tmp_path: Path) -> None:
    rows, vectors = identity_a_rows()
    more = [
        {"image_id": f"b{k}", "identity_id": "b", "rank_score": None, "phash_code": OTHER ^ k}
        for k in range(4)
    ]
    more_vectors = np.stack([unit((8, 1), (9, 0.05 * k)) for k in range(4)])  # one photo four times
    rows, vectors = rows + more, np.concatenate([vectors, more_vectors])
    results = []
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(rows))
        half = len(order) // 2
        shards = {
            0: (table([rows[k] for k in order[:half]], RANKED), vectors[order[:half]]),
            1: (table([rows[k] for k in order[half:]], RANKED), vectors[order[half:]]),
        }
        out = by_id(run_dedup(tmp_path / str(seed), shards))
        results.append({k: (v["status"], v["dup_of"], v["dup_cluster"]) for k, v in out.items()})
    assert results[0] == results[1] == results[2]
    assert sum(status == "ok" for status, _, _ in results[0].values()) == 3  # a2, a4, b0 (smallest id)


def test_resolution_breaks_ties_without_rank_scores(tmp_path: Path) -> None:
    rows = [
        {"image_id": "a1", "identity_id": "a", "width": 100, "height": 100},
        {"image_id": "a2", "identity_id": "a", "width": 300, "height": 200},
        {"image_id": "a3", "identity_id": "a", "width": None, "height": None},
    ]
    sizes = {"width": pa.int32(), "height": pa.int32()}
    vectors = np.stack([unit((0, 1))] * 3)
    out = by_id(run_dedup(tmp_path, {0: (table(rows, sizes), vectors)}, hashes=[]))
    assert [out[k]["status"] for k in ("a1", "a2", "a3")] == ["duplicate", "ok", "duplicate"]


def test_same_photo_under_two_identities_is_a_conflict(tmp_path: Path) -> None:
    rows = [
        {"image_id": "a1", "identity_id": "ann", "phash_code": 7},
        {"image_id": "b1", "identity_id": "bob", "phash_code": 7},
        {"image_id": "b2", "identity_id": "bob", "phash_code": FAR},
    ]
    vectors = np.stack([unit((0, 1)), unit((0, 1)), unit((3, 1))])
    codes = {"phash_code": pa.int64()}
    shards = {0: (table(rows[:1], codes), vectors[:1]), 1: (table(rows[1:], codes), vectors[1:])}
    out = by_id(run_dedup(tmp_path, shards, confirm_conflicts_with=""))  # descriptors alone (no images here)
    assert out["a1"]["status"] == out["b1"]["status"] == "identity_conflict"
    assert "'BOB'" in out["a1"]["reason"] and "b1" in out["a1"]["reason"]
    assert "'ANN'" in out["b1"]["reason"]
    assert out["b2"]["status"] == "ok"
    unconfirmed = by_id(run_dedup(tmp_path / "f", shards))  # the default face check finds no face to compare
    assert unconfirmed["a1"]["status"] == unconfirmed["b1"]["status"] == "ok"
    assert (
        unconfirmed["a1"]["needs_review"]
        and "not confirmed by the face" in unconfirmed["a1"]["review_reason"]
    )
    assert "no face to compare" in unconfirmed["b1"]["review_reason"]
    within_only = by_id(
        run_dedup(tmp_path / "w", {0: (table(rows, codes), vectors)}, across_identities=False)
    )
    assert all(row["status"] == "ok" for row in within_only.values())


def test_low_score_rows_meet_their_copies_so_a_review_cannot_bring_back_a_second(tmp_path: Path) -> None:
    """Rank's low_score rows can come back in review, so dedup clusters them within their identity: a copy of
    a kept image becomes a duplicate, of two set-aside copies one stays low_score. Across identities only
    kept rows count: a set-aside image never makes a kept one a conflict."""
    low = {"status": "low_score", "reason": "rank score below min_score 0.5"}
    rows = [
        {"image_id": "a1", "identity_id": "a", "rank_score": 0.6, "phash_code": 0, "width": 90, "height": 90},
        {
            "image_id": "a2",
            "identity_id": "a",
            "rank_score": 0.4,
            "phash_code": 0b11,
            **low,
            "width": 900,
            "height": 900,
        },  # a larger copy of a1, set aside by rank
        {"image_id": "a3", "identity_id": "a", "rank_score": 0.3, "phash_code": FAR, **low},
        {
            "image_id": "a4",
            "identity_id": "a",
            "rank_score": 0.45,
            "phash_code": FAR ^ 0b1,
            **low,
        },  # a3's copy
        {"image_id": "a5", "identity_id": "a", "rank_score": 0.2, "phash_code": OTHER, **low},
        {"image_id": "b1", "identity_id": "b", "rank_score": 0.9, "phash_code": OTHER},  # a5's photo under b
    ]
    vectors = np.stack(
        [
            unit((0, 1)),
            unit((0, 0.97), (1, 0.24)),
            unit((4, 1)),
            unit((4, 0.97), (5, 0.24)),
            unit((8, 1)),
            unit((8, 1)),
        ]
    )
    types = RANKED | {"width": pa.int32(), "height": pa.int32()}
    out = by_id(run_dedup(tmp_path, {0: (table(rows, types), vectors)}, confirm_conflicts_with=""))
    assert [out[k]["status"] for k in ("a1", "a2", "a3", "a4", "a5", "b1")] == [
        "ok",
        "duplicate",
        "duplicate",
        "low_score",
        "low_score",
        "ok",
    ]
    assert out["a2"]["dup_of"] == "a1" and "a1" in out["a2"]["reason"]
    assert out["a3"]["dup_of"] == "a4" and out["a4"]["dup_cluster"] == out["a3"]["dup_cluster"] is not None
    assert out["a4"]["reason"] == low["reason"]  # the kept one of the set-aside pair keeps rank's reason
    assert not out["b1"]["needs_review"] and out["b1"]["dup_cluster"] is None


BORDERLINE_ROWS = [
    {"image_id": "a1", "identity_id": "a", "phash_code": 0},
    {"image_id": "a2", "identity_id": "a", "phash_code": OTHER},  # cosine 0.85 only
    {"image_id": "c1", "identity_id": "c", "phash_code": FAR},
    {"image_id": "c2", "identity_id": "c", "phash_code": FAR ^ 0xFF},  # 8 bits and cosine 0.85
    {"image_id": "d1", "identity_id": "d", "phash_code": -1},
    {"image_id": "d2", "identity_id": "d", "phash_code": -1 ^ 0b111111},  # 6 bits only
]
BORDERLINE_VECTORS = np.stack(
    [
        unit((0, 1)),
        unit((0, 0.85), (1, 0.527)),
        unit((4, 1)),
        unit((4, 0.85), (5, 0.527)),
        unit((8, 1)),
        unit((9, 1)),
    ]
)


def test_borderline_pairs_go_to_review_without_verification(tmp_path: Path) -> None:
    rows = table(BORDERLINE_ROWS, {"phash_code": pa.int64()})
    out = by_id(run_dedup(tmp_path, {0: (rows, BORDERLINE_VECTORS)}))
    for row in out.values():
        assert row["status"] == "ok" and row["needs_review"], row["image_id"]
    assert "a2" in out["a1"]["review_reason"] and "cosine 0.850" in out["a1"]["review_reason"]
    assert "6 bits" in out["d2"]["review_reason"]


def smooth_image(seed: int) -> np.ndarray:
    """A 48x48 image of smooth random blobs (different seeds: unrelated pictures)."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 6)) * 255
    return np.asarray(Image.fromarray(small.astype(np.uint8)).resize((48, 48), Image.Resampling.BICUBIC))


def thumb(image: np.ndarray, box: tuple[int, int, int, int] = (0, 0, 48, 48)) -> np.ndarray:
    """The 32x32 thumbnail of a crop (as describe stores it: 1024 uint8)."""
    crop = Image.fromarray(image).crop(box).resize((32, 32), Image.Resampling.LANCZOS)
    return np.asarray(crop).reshape(-1)


def test_verification_decides_borderline_pairs(tmp_path: Path) -> None:
    # a: a crop of the same picture (verified: duplicate); c: two unrelated pictures (dropped);
    # d: the same picture with a patch changed (close, not equal: review)
    same, changed = smooth_image(1), smooth_image(3).copy()
    changed_copy = changed.copy()
    changed_copy[8:30, 8:30] = smooth_image(4)[8:30, 8:30]
    thumbs = np.stack(
        [
            thumb(same),
            thumb(same, (2, 1, 46, 47)),
            thumb(smooth_image(2)),
            thumb(smooth_image(5)),
            thumb(changed),
            thumb(changed_copy),
        ]
    )
    rows = table(BORDERLINE_ROWS, {"phash_code": pa.int64()})
    out = by_id(run_dedup(tmp_path, {0: (rows, BORDERLINE_VECTORS)}, {0: thumbs}, review_min_aligned_ncc=0.5))
    assert {out["a1"]["status"], out["a2"]["status"]} == {"ok", "duplicate"}
    assert [out[k]["status"] for k in ("c1", "c2")] == ["ok", "ok"] and not out["c1"]["needs_review"]
    assert out["d1"]["needs_review"] and "aligned NCC" in out["d1"]["review_reason"]


def test_rows_that_are_not_ok_pass_through_and_empty_shards_get_columns(tmp_path: Path) -> None:
    rows = [
        {"image_id": "a1", "identity_id": "a", "phash_code": 0},
        {"image_id": "a2", "identity_id": "a", "phash_code": 0, "status": "no_face", "reason": "none found"},
    ]
    vectors = np.stack([unit((0, 1)), np.zeros(DIM, np.float32)])
    codes = {"phash_code": pa.int64()}
    empty = table([], codes)
    out = run_dedup(tmp_path, {0: (table(rows, codes), vectors), 1: (empty, np.zeros((0, DIM), np.float32))})
    row = out[0].to_pylist()[1]
    assert (row["status"], row["reason"]) == ("no_face", "none found")
    assert all(row[column] is None for column in COLUMNS)
    assert out[0].to_pylist()[0]["status"] == "ok"
    assert out[1].num_rows == 0 and set(COLUMNS) <= set(out[1].column_names)


def write_copies(data_dir: Path, folder: Path) -> dict[str, str]:
    """Two CFP people: 3 photos each, photo 1 with four copies; returns file name -> what it is."""
    made = {}
    for person in ("011", "054"):
        (folder / person).mkdir(parents=True)
        for number in ("01", "04", "08"):
            source = data_dir / "cfp" / "Data" / "Images" / person / "frontal" / f"{number}.jpg"
            shutil.copyfile(source, folder / person / f"{number}.jpg")
            made[f"{person}/{number}.jpg"] = f"{person}/{number}"
        image = Image.open(folder / person / "01.jpg").convert("RGB")
        w, h = image.size
        copies = {
            "jpeg": image,
            "crop": image.crop((round(w * 0.03), round(h * 0.02), w - round(w * 0.01), h - round(h * 0.02))),
            "border": ImageOps.expand(image, border=round(w * 0.08), fill=(255, 255, 255)),
            "grey": image.convert("L").convert("RGB"),
        }
        for name, copy in copies.items():
            copy.save(folder / person / f"01_{name}.jpg", quality=15 if name == "jpeg" else 90)
            made[f"{person}/01_{name}.jpg"] = f"{person}/01"
    return made


def test_describe_and_dedup_on_real_photos(tmp_path: Path, data_dir: Path) -> None:
    made = write_copies(data_dir, tmp_path / "images")
    rows = [
        {"image_id": name, "identity_id": name.split("/")[0], "path": str(tmp_path / "images" / name)}
        for name in sorted(made)
    ]
    rows.append({"image_id": "gone", "identity_id": "011", "path": str(tmp_path / "missing.jpg")})
    rows.append({"image_id": "skip", "identity_id": "011", "status": "no_face", "reason": "x"})
    work = tmp_path / "work"
    settings = {"dtype": "float16", "embedders": ["handcrafted"]}
    describe = DescribeStage(build_config(DescribeStage.Config, settings))
    described = describe.run_shard(table(rows), local_context(work, "describe", 0, 1))
    out = {row["image_id"]: row for row in described.to_pylist()}
    assert out["gone"]["status"] == "failed_decode" and out["gone"]["described"] is False
    assert out["skip"]["described"] is None and out["skip"]["phash"] is None
    for name in made:
        assert out[name]["described"] and hex_to_code(out[name]["phash"]) == out[name]["phash_code"]
    vectors = local_context(work, "describe", 0, 1).read_vectors("describe", "handcrafted")
    assert vectors.dtype == np.float16 and vectors.shape[0] == len(rows)
    assert not vectors[-2:].any()  # rows not described are zeros

    result = DedupStage(build_config(DedupStage.Config, {})).run_all(
        {0: described}, local_context(work, "dedup", None, 1)
    )
    final = {row["image_id"]: row for row in result[0].to_pylist()}
    for name, photo in made.items():
        kept_of_photo = [n for n, p in made.items() if p == photo and final[n]["status"] == "ok"]
        assert len(kept_of_photo) == 1, (photo, kept_of_photo)  # each photo once, its copies removed
        if final[name]["status"] == "duplicate":
            assert made[final[name]["dup_of"]] == photo


def test_cli_runs_describe_then_dedup(tmp_path: Path, data_dir: Path) -> None:
    made = write_copies(data_dir, tmp_path / "images")
    runner = CliRunner()
    common = ["-w", str(tmp_path / "work"), "--workers", "1", "--shards", "2"]
    assert runner.invoke(cli.app, [*common, "collect", str(tmp_path / "images")]).exit_code == 0
    describe = ["describe", "--input", "collect", "--hashes", "phash", "--embedders", "handcrafted"]
    result = runner.invoke(cli.app, [*common, *describe])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.app, [*common, "dedup", "--min-cosine", "0.9"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "work" / "dedup")
    assert len(frame) == len(made) and (frame.status == "duplicate").sum() == 8
    bad = runner.invoke(cli.app, [*common, "dedup", "--min-cosine", "0.5", "--overwrite"])
    assert bad.exit_code == 1 and "review_min_cosine" in bad.output
