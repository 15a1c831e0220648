"""Candidate identity lists on the real benchmark name lists: overlaps, parsing, typos, balance, cap."""

from __future__ import annotations

import csv
import json
import random
import re
import time
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from curate import manifest
from curate.candidates import (
    COLUMNS,
    REVIEW_FILE,
    CandidatesConfig,
    build_candidates,
    read_candidates,
    summarize,
    write_candidates,
)
from curate.candidates.sources import detect_format, read_source
from curate.candidates.typos import bounded_distance, close_pairs
from curate.commands import candidates as candidates_commands
from curate.errors import ConfigError, CurateError
from curate.names import identity_id, match_key

REPO = Path(__file__).resolve().parents[1]


def letters_key(name: str) -> str:
    """The data README's normalisation, written independently: ASCII-folded, lower-cased, letters only."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub("[^a-z]", "", folded)


def raw_names(path: Path) -> list[str]:
    """Names of a benchmark file parsed the naive way (first TAB/CSV field, quotes and underscores gone)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".csv":
        return [row[1].strip().strip('"') for row in csv.reader(lines[1:])]
    return [line.split("\t")[0] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def lists(data_dir: Path) -> SimpleNamespace:
    folder = data_dir / "name_lists"
    return SimpleNamespace(
        lfw=folder / "lfw-names.txt", cfp=folder / "cfp_names.txt", vgg=folder / "vggface2_identity_meta.csv"
    )


@pytest.fixture(scope="module")
def cfp_minus_lfw(lists) -> pa.Table:
    return build_candidates([lists.cfp], CandidatesConfig(exclude=[lists.lfw]))


@pytest.fixture(scope="module")
def vgg_minus_benchmarks(lists) -> pa.Table:
    return build_candidates([lists.vgg], CandidatesConfig(exclude=[lists.lfw, lists.cfp]))


def rows_by_name(table: pa.Table) -> dict[str, dict]:
    return {row["name"]: row for row in table.to_pylist()}


def test_formats_are_detected_from_content(lists, tmp_path):
    assert detect_format(lists.lfw.read_text()) == "name_count"
    assert detect_format(lists.cfp.read_text()) == "text"
    assert detect_format(lists.vgg.read_text()) == "vggface2"
    # content decides, not the suffix: LFW's format under a .csv name still reads as name<TAB>count
    renamed = tmp_path / "lfw_copy.csv"
    renamed.write_text(lists.lfw.read_text())
    assert [r.name for r in read_source(renamed)][:2] == ["AJ Cook", "AJ Lamas"]


def test_cfp_minus_lfw_excludes_exactly_the_176_overlaps(cfp_minus_lfw, lists):
    lfw_keys = {letters_key(name) for name in raw_names(lists.lfw)}
    expected = {name for name in raw_names(lists.cfp) if letters_key(name) in lfw_keys}
    rows = rows_by_name(cfp_minus_lfw)
    excluded = {name for name, row in rows.items() if row["status"] == "excluded"}
    assert len(excluded) == 176 and excluded == expected
    assert summarize(cfp_minus_lfw).per_benchmark == {"lfw-names": 176}
    for name in ["Adam Sandler", "Al Pacino", "Alicia Keys", "Angelina Jolie"]:
        assert rows[name]["exclusion"] == "benchmark" and rows[name]["overlaps"] == ["lfw-names"]
        assert rows[name]["reason"] == f"overlaps benchmark lfw-names: {name!r}"
    # case differs from LFW's spelling but the normalised name is the same person
    assert rows["Leonardo Dicaprio"]["reason"] == "overlaps benchmark lfw-names: 'Leonardo DiCaprio'"
    for name in ["50 Cent", "Aaron Rodgers", "Jennifer Anniston"]:
        assert rows[name]["status"] == "ok" and rows[name]["reason"] == ""
    # CFP's misspelling escapes exact matching, so it is kept but flagged for review
    assert rows["Jennifer Anniston"]["benchmark_near_match"] == "lfw-names: 'Jennifer Aniston' (1 edit)"
    assert rows["Adam Levine"]["benchmark_near_match"] is None


def test_vggface2_meta_is_parsed_with_its_quirks(lists):
    table = build_candidates([lists.vgg], CandidatesConfig(max_typo_edits=0))
    rows = table.to_pylist()
    raw = list(csv.reader(lists.vgg.read_text(encoding="utf-8").splitlines()))[1:]
    assert len(rows) == len(raw) == 9131
    by_id = {row["external_id"]: row for row in rows}
    first = by_id["n000001"]  # a row with Sample_Num
    assert (first["name"], first["popularity"], first["flag"], first["gender"]) == (
        "14th Dalai Lama",
        424.0,
        "0",
        "m",
    )
    late = by_id["n002519"]  # past row 2,491: no Sample_Num, Flag and Gender shifted one column left
    assert (late["name"], late["popularity"], late["flag"], late["gender"]) == (
        "Emilio Rivera",
        None,
        "1",
        "m",
    )
    assert sum(row["popularity"] is not None for row in rows) == 2491
    assert {row["gender"] for row in rows} == {"m", "f"} and {row["flag"] for row in rows} == {"0", "1"}
    # the gender column agrees with the raw file row by row, whichever layout the row has
    raw_gender = {r[0]: (r[4] if r[4].strip() else r[3]).strip() for r in raw}
    assert all(by_id[key]["gender"] == gender for key, gender in raw_gender.items())
    assert all(not row["name"].startswith((" ", '"')) and "_" not in row["name"] for row in rows)


def test_vggface2_overlaps_lfw_590_and_cfp_163(vgg_minus_benchmarks, lists):
    summary = summarize(vgg_minus_benchmarks)
    assert summary.per_benchmark == {"lfw-names": 590, "cfp_names": 163}
    vgg = {letters_key(name) for name in raw_names(lists.vgg)}
    both = (
        vgg & {letters_key(n) for n in raw_names(lists.lfw)} & {letters_key(n) for n in raw_names(lists.cfp)}
    )
    assert summary.per_exclusion == {"benchmark": 590 + 163 - len(both - {""})}
    rows = rows_by_name(vgg_minus_benchmarks)
    assert rows["Tony La Russa"]["reason"] == "overlaps benchmark lfw-names: 'Tony LaRussa'"
    assert rows["J. J. Redick"]["overlaps"] == ["lfw-names"]
    assert rows["Brad Pitt"]["overlaps"] == ["lfw-names", "cfp_names"]
    assert rows["Álvaro Uribe"]["reason"] == (
        "overlaps benchmark lfw-names: 'Alvaro Uribe'; overlaps benchmark cfp_names: 'Alvaro Uribe'"
    )


def test_typo_pair_flagged_for_review_not_merged(lists, tmp_path):
    table = build_candidates([lists.cfp, lists.lfw], CandidatesConfig())
    rows = rows_by_name(table)
    aniston, anniston = rows["Jennifer Aniston"], rows["Jennifer Anniston"]
    assert aniston["status"] == anniston["status"] == "ok"  # both identities kept
    # LFW gives Aniston a popularity (21 images) and CFP none, so the misspelling points at the other
    assert anniston["possible_duplicate_of"] == aniston["identity_id"] and anniston["duplicate_distance"] == 1
    assert aniston["possible_duplicate_of"] is None
    # exact-key duplicates fold: "Adam Sandler" from both lists is one identity with both sources
    assert rows["Adam Sandler"]["sources"] == ["cfp_names", "lfw-names"]
    assert table.num_rows == len({identity_id(n) for n in raw_names(lists.cfp) + raw_names(lists.lfw)})
    write_candidates(table, tmp_path)
    with open(tmp_path / "candidates" / REVIEW_FILE, encoding="utf-8") as handle:
        review = list(csv.DictReader(handle))
    assert len(review) == summarize(table).likely_typos
    pair = next(r for r in review if r["name"] == "Jennifer Anniston")
    assert pair["duplicate_name"] == "Jennifer Aniston" and pair["edits"] == "1"


def test_aliases_fold_across_jsonl_csv_and_text(tmp_path, lists):
    jsonl = tmp_path / "wiki.jsonl"
    people = [
        {"name": "Jennifer Joanna Aniston", "aliases": ["Jennifer Aniston", "Jen Aniston"], "popularity": 90,
         "attributes": {"gender": "f"}, "external_id": "Q32522"},
        {"name": "Tom Hanks", "popularity": 80, "gender": "m", "nationality": "US"},
    ]  # fmt: skip
    jsonl.write_text("\n".join(json.dumps(p) for p in people) + "\n")
    extra = tmp_path / "extra.csv"
    extra.write_text("name,aliases,popularity,gender\nJen_Aniston,,120,f\nThomas Hanks,Tom Hanks,5,m\n")
    text = tmp_path / "plain.txt"
    text.write_text("jennifer  aniston\nBrand New Person\n")
    table = build_candidates([jsonl, extra, text], CandidatesConfig(exclude=[lists.lfw]))
    rows = rows_by_name(table)
    # the display name is one no source lists as an alias: extra.csv makes "Tom Hanks" an alias
    assert set(rows) == {"Jennifer Joanna Aniston", "Thomas Hanks", "Brand New Person"}
    jen = rows["Jennifer Joanna Aniston"]
    assert jen["aliases"] == ["Jennifer Aniston", "Jen Aniston"] and jen["popularity"] == 120.0
    assert (
        jen["sources"] == ["wiki", "extra", "plain"]
        and jen["external_id"] == "Q32522"
        and jen["gender"] == "f"
    )
    # excluded through an alias: LFW spells it Jennifer_Aniston
    assert jen["status"] == "excluded" and jen["reason"] == "overlaps benchmark lfw-names: 'Jennifer Aniston'"
    tom = rows["Thomas Hanks"]
    assert tom["aliases"] == ["Tom Hanks"] and tom["nationality"] == "US" and tom["status"] == "excluded"
    assert rows["Brand New Person"]["status"] == "ok" and rows["Brand New Person"]["gender"] is None


def test_balance_by_gender_keeps_the_most_popular_of_each(lists):
    table = build_candidates(
        [lists.vgg], CandidatesConfig(exclude=[lists.lfw], balance="gender", max_typo_edits=0)
    )
    rows = table.to_pylist()
    eligible = [r for r in rows if r["exclusion"] != "benchmark"]
    smallest = min(sum(r["gender"] == g for r in eligible) for g in ("m", "f"))
    kept = [r for r in rows if r["status"] == "ok"]
    assert sum(r["gender"] == "m" for r in kept) == sum(r["gender"] == "f" for r in kept) == smallest
    for gender in ("m", "f"):
        score = [r["popularity"] or -1.0 for r in kept if r["gender"] == gender]
        dropped = [
            r["popularity"] or -1.0 for r in rows if r["exclusion"] == "balance" and r["gender"] == gender
        ]
        assert min(score) >= max(dropped, default=-1.0)
    assert summarize(table).per_exclusion["balance"] == len(eligible) - 2 * smallest
    capped = build_candidates(
        [lists.vgg], CandidatesConfig(balance="gender", max_identities=101, max_typo_edits=0)
    )
    genders = [r["gender"] for r in capped.to_pylist() if r["status"] == "ok"]
    assert genders.count("m") == genders.count("f") == 50
    with pytest.raises(ConfigError, match="balance"):
        build_candidates([lists.cfp], CandidatesConfig(balance="gender"))


def test_max_keeps_the_most_popular(lists):
    table = build_candidates([lists.lfw], CandidatesConfig(max_identities=40, max_typo_edits=0))
    rows = table.to_pylist()
    kept = [r["popularity"] for r in rows if r["status"] == "ok"]
    dropped = [r["popularity"] for r in rows if r["exclusion"] == "max"]
    assert len(kept) == 40 and len(dropped) == len(rows) - 40
    assert min(kept) >= max(dropped)
    assert max(kept) == max(r["popularity"] for r in rows)
    assert next(r for r in rows if r["exclusion"] == "max")["reason"].startswith(
        "over the cap of 40 identities"
    )


def test_identity_ids_are_stable_unique_and_safe(lists, tmp_path):
    first = build_candidates([lists.cfp], CandidatesConfig(max_typo_edits=0))
    reordered = tmp_path / "shuffled.txt"
    names = lists.cfp.read_text().splitlines()
    random.Random(7).shuffle(names)
    reordered.write_text("\n".join(n.upper() for n in names))
    second = build_candidates([reordered], CandidatesConfig(max_typo_edits=0))
    ids_first = dict(
        zip(first.column("match_key").to_pylist(), first.column("identity_id").to_pylist(), strict=True)
    )
    ids_second = dict(
        zip(second.column("match_key").to_pylist(), second.column("identity_id").to_pylist(), strict=True)
    )
    assert ids_first == ids_second and len(set(ids_first.values())) == 500
    assert all(re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}", value) for value in ids_first.values())
    assert ids_first["jennifer anniston"] == identity_id("Jennifer Anniston")


def test_bounded_distance_matches_a_naive_reference():
    def naive(a: str, b: str) -> int:
        d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
                if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        return d[-1][-1]

    rng = random.Random(3)
    for _ in range(600):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 9)))
        limit = rng.randint(0, 3)
        assert bounded_distance(a, b, limit) == min(naive(a, b), limit + 1), (a, b, limit)


def test_typo_search_on_all_vggface2_names_takes_seconds(lists):
    names = [r.name for r in read_source(lists.vgg)]
    started = time.perf_counter()
    pairs = close_pairs(names)
    assert time.perf_counter() - started < 15
    assert pairs, "9,131 celebrity names hold some one-letter near misses"
    for pair in pairs:
        a, b = (match_key(names[i]).replace(" ", "") for i in (pair.left, pair.right))
        assert bounded_distance(a, b, 2) == pair.distance <= 2


def test_manifest_roundtrip_and_example(tmp_path, cfp_minus_lfw):
    path = write_candidates(cfp_minus_lfw, tmp_path)
    assert path == tmp_path / "candidates" / "candidates.parquet"
    assert read_candidates(tmp_path).equals(cfp_minus_lfw)
    manifest.write_shard(cfp_minus_lfw, tmp_path / "other.parquet", kind="images")
    with pytest.raises(CurateError, match="not a candidates list"):
        read_candidates(tmp_path / "other.parquet")
    example = read_candidates(REPO / "manifests" / "examples" / "candidates.parquet")
    assert example.num_rows <= 20
    assert all(example.schema.field(name).type == dtype for name, dtype in COLUMNS.items())
    assert set(example.column("status").to_pylist()) == {"ok", "excluded"}


def test_cli_writes_the_list_and_prints_a_summary(tmp_path, lists):
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = SimpleNamespace(workdir=tmp_path)

    app.add_typer(candidates_commands.app)
    result = CliRunner().invoke(
        app, ["candidates", str(lists.cfp), "--exclude", str(lists.lfw), "--max", "100"]
    )
    assert result.exit_code == 0, result.output
    assert "100 kept of 500" in result.output and "overlap with lfw-names: 176" in result.output
    assert "excluded by max: 224" in result.output
    assert summarize(read_candidates(tmp_path)).kept == 100
    missing = CliRunner().invoke(app, ["candidates", str(tmp_path / "nope.txt")])
    assert missing.exit_code != 0
