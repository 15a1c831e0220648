"""Decode once: describe from collect's stored squares gives exactly what decoding the files again gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps

from curate import manifest
from curate.embedders.handcrafted import HandcraftedEmbedder
from curate.hashing import hex_to_code, square_from_bytes
from curate.stage import local_context
from curate.stages.describe import THUMBNAILS, DescribeConfig, DescribeStage
from curate.stages.ingest import IngestConfig, IngestStage

DESCRIBED = ["status", "reason", "described", "phash", "phash_code", "dhash", "dhash_code"]


def make_source(data_dir: Path, root: Path) -> Path:
    """Two CFP people, with a framed copy, a transparent PNG, an exact copy, a corrupt file and a large JPEG
    (decoded at a reduced DCT scale for its square)."""
    source = root / "source"
    for person in ("001", "002"):
        folder = source / person
        folder.mkdir(parents=True)
        for photo in sorted((data_dir / "cfp" / "Data" / "Images" / person).glob("*/*.jpg"))[:5]:
            shutil.copyfile(photo, folder / f"{photo.parent.name}_{photo.name}")
    first = sorted((source / "001").iterdir())[0]
    ImageOps.expand(Image.open(first), border=25, fill=(0, 0, 0)).save(source / "001" / "framed.jpg")
    shutil.copyfile(first, source / "001" / "same_bytes.jpg")
    Image.new("RGBA", (90, 70), (200, 30, 30, 128)).save(source / "002" / "alpha.png")
    (source / "002" / "broken.jpg").write_bytes(first.read_bytes()[:400])
    Image.open(first).resize((700, 560)).save(source / "002" / "large.jpg", quality=90)
    return source


def collect(source: Path, workdir: Path, squares: bool) -> pa.Table:
    stage = IngestStage(IngestConfig(source=source, squares=squares))
    (table,) = stage.plan(workdir, 1).values()
    result = stage.run_shard(table, local_context(workdir, "collect"))
    path = manifest.shard_path(workdir, "collect", 0)
    manifest.write_shard(result, path)
    return manifest.read_shard(path)


def describe(table: pa.Table, workdir: Path, **settings: object) -> tuple[pa.Table, dict[str, np.ndarray]]:
    ctx = local_context(workdir, "describe")
    config = DescribeConfig(**{"embedders": ["handcrafted"], **settings})  # squares serve this one only
    out = DescribeStage(config).run_shard(table, ctx)
    vectors = {name: ctx.read_vectors("describe", name) for name in ("handcrafted", THUMBNAILS)}
    return out, vectors


def test_describe_from_squares_equals_decoding_again(data_dir: Path, tmp_path: Path) -> None:
    source = make_source(data_dir, tmp_path)
    plain = collect(source, tmp_path / "plain", squares=False)
    stored = collect(source, tmp_path / "squares", squares=True)
    assert plain.column("square").null_count == plain.num_rows
    statuses = stored.column("status").to_pylist()
    assert statuses.count("ok") == 13 and "exact_duplicate" in statuses and "failed_decode" in statuses
    large = stored.column("source").to_pylist().index(str(source / "002" / "large.jpg"))
    assert (stored.column("width")[large].as_py(), stored.column("height")[large].as_py()) == (700, 560)
    squares = stored.column("square").to_pylist()
    assert [sq is not None for sq in squares] == [s == "ok" for s in statuses]
    assert plain.drop_columns(["square"]).equals(stored.drop_columns(["square"]))

    before, before_vectors = describe(plain, tmp_path / "plain")
    for path in source.rglob("*.*"):  # decode once: describe must not need the files any more
        path.unlink()
    after, after_vectors = describe(stored, tmp_path / "squares")
    assert after.select(DESCRIBED).equals(before.select(DESCRIBED))
    assert "square" not in after.column_names  # describe's manifest does not carry the squares on
    columns = pq.ParquetFile(manifest.shard_path(tmp_path / "squares", "collect", 0)).metadata.row_group(0)
    codecs = {
        columns.column(i).path_in_schema: columns.column(i).compression for i in range(columns.num_columns)
    }
    assert codecs["square"] == "UNCOMPRESSED" and codecs["path"] == "ZSTD"  # raw pixels: zstd gains ~3%
    assert after.column("described").to_pylist().count(True) == 13
    for name, array in before_vectors.items():
        assert array.any(axis=1).sum() == 13
        assert np.array_equal(after_vectors[name], array), name


def test_squares_are_not_used_when_they_would_change_the_values(data_dir: Path, tmp_path: Path) -> None:
    source = make_source(data_dir, tmp_path)
    stored = collect(source, tmp_path, squares=True)
    shutil.rmtree(source)
    for settings in ({"trim_borders": False}, {"max_side": 256}):
        out, _ = describe(stored, tmp_path, **settings)  # decodes the files, which are gone
        assert out.column("described").to_pylist().count(True) == 0
        assert out.column("status").to_pylist().count("failed_decode") == 14
    first_ok = stored.column("status").to_pylist().index("ok")
    crop_paths = [str(tmp_path / "gone.png") if row == first_ok else None for row in range(stored.num_rows)]
    crops = stored.append_column("crop_path", pa.array(crop_paths, pa.string()))
    out, _ = describe(crops, tmp_path)  # a row with a face crop reads the crop; the others use squares
    described = out.column("described").to_pylist()
    assert described.count(True) == 12 and described[first_ok] is False


def test_describe_batches_give_each_crops_own_values(data_dir: Path, tmp_path: Path) -> None:
    """Batched (64 rows at a time, in numpy) equals one crop at a time through imagehash, Pillow and the
    embedder, on 200 real CFP crops described from collect's squares."""
    source = tmp_path / "source"
    for photo in sorted((data_dir / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))[:200]:
        target = source / photo.parts[-3] / f"{photo.parent.name}_{photo.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
    table = collect(source, tmp_path, squares=True)
    out, vectors = describe(table, tmp_path, hashes=["phash", "dhash"])
    ok = [i for i, status in enumerate(out.column("status").to_pylist()) if status == "ok"]
    assert len(ok) >= 190 and all(out.column("described")[i].as_py() for i in ok)
    squares = [square_from_bytes(table.column("square")[i].as_py()) for i in ok]
    for kind, function in (("phash", imagehash.phash), ("dhash", imagehash.dhash)):
        expected = [str(function(square)) for square in squares]
        assert [out.column(kind)[i].as_py() for i in ok] == expected, kind
        assert [out.column(f"{kind}_code")[i].as_py() for i in ok] == [hex_to_code(h) for h in expected]
    thumbs = [np.asarray(sq.convert("L").resize((32, 32), Image.Resampling.LANCZOS)) for sq in squares]
    assert np.array_equal(vectors[THUMBNAILS][ok], np.stack(thumbs).reshape(len(ok), -1))
    embedder = HandcraftedEmbedder()
    one_by_one = np.concatenate([embedder.embed([np.asarray(square)]) for square in squares])
    assert np.abs(vectors["handcrafted"][ok] - one_by_one).max() <= 1e-6


def test_an_unknown_embedder_is_refused_before_overwrite_deletes_the_finished_stage(
    data_dir: Path, tmp_path: Path
) -> None:
    """`describe --embedders typo --overwrite` failed inside the first task, after the markers were gone."""
    from typer.testing import CliRunner

    from curate import lineage
    from curate.cli import app

    source = tmp_path / "images"
    for name in ("s1", "s2"):
        shutil.copytree(data_dir / "orl_faces" / name, source / name)
    workdir = tmp_path / "w"
    base = ["-w", str(workdir), "--workers", "0", "--shards", "2"]
    describe = ["describe", "--embedders", "handcrafted"]
    faces = ["faces", "--keep-whole-if-no-face", "--crop-size", "32"]
    runner = CliRunner()
    for step in (["collect", str(source)], faces, describe):
        assert runner.invoke(app, [*base, *step]).exit_code == 0
    refused = runner.invoke(app, [*base, *describe[:-1], "handcrafted,dlbi", "--overwrite"])
    assert refused.exit_code == 1 and "dlbi" in refused.output and "\n" not in refused.output.strip()
    assert lineage.stage_state(lineage.Checks(workdir, 2), "describe").label == "done"
    assert lineage.success_path(workdir, "describe").exists()


def test_a_model_trained_again_into_the_same_folder_makes_its_vectors_stale(
    data_dir: Path, tmp_path: Path
) -> None:
    """describe with an exported model, then the model retrained into the same folder: describe must run
    again (the model's files are in its lineage), not skip its shards as done with the old model's vectors."""
    import torch
    from typer.testing import CliRunner

    from curate import lineage
    from curate.cli import app
    from curate.train.backbones import build_net
    from curate.train.export import export_embedder

    source = tmp_path / "images"
    for name in ("s1", "s2"):
        shutil.copytree(data_dir / "orl_faces" / name, source / name)
    model = tmp_path / "model"
    workdir = tmp_path / "w"
    base = ["-w", str(workdir), "--workers", "0", "--shards", "2"]
    describe = ["describe", "--embedders", f"handcrafted,{model}"]
    runner = CliRunner()
    vectors = []
    for seed in (0, 1):  # the first model, then "the same model folder, trained again"
        torch.manual_seed(seed)
        export_embedder(build_net("small", 16, 32).eval(), model, 32)
        faces = ["faces", "--keep-whole-if-no-face", "--crop-size", "32"]
        for step in [["collect", str(source)], faces, describe] if seed == 0 else [describe]:
            result = runner.invoke(app, [*base, *step])
            assert result.exit_code == 0, result.output
        assert lineage.stage_state(lineage.Checks(workdir, 2), "describe").label == "done"
        name = f"model:{model.name}"
        vectors.append(np.concatenate([manifest.read_vectors(workdir, "describe", name, s) for s in (0, 1)]))
    assert vectors[0].shape == vectors[1].shape and not np.allclose(vectors[0], vectors[1])
