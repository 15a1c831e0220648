"""Importing a decisions CSV: every row must name this workdir's images and identities, a reviewer decides
one target once per file, undone rows of a --history file stay undone, and importing twice stores nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from review_fixtures import make_workdir
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import CurateError
from curate.executor import ExecutorOptions
from curate.review import DecisionStore, apply_decisions, read_csv, record_decisions, store_path

LOCAL = ExecutorOptions(workers=1, processes=False)
HEADER = "image_id,decision,reviewer,time,note,identity_id,target\n"


@pytest.fixture
def workdir(tmp_path, data_dir):
    folder = tmp_path / "run"
    make_workdir(folder, data_dir)
    return folder


def _ids(workdir):
    rows = pd.read_parquet(workdir / "rank")
    return rows[rows["identity_id"] == "cfp-001"]["image_id"].tolist()


def _import(workdir, csv):
    result = CliRunner().invoke(app, ["-w", str(workdir), "--workers", "1", "review", "import", str(csv)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["{u},reject,bob,,,,"], "line 2: image_id '{u}' is not in"),
        ([",identity_drop,bob,,,cfp-999,"], "line 2: identity_id 'cfp-999' is not in"),
        ([",identity_merge,bob,,,cfp-001,cfp-999"], "line 2: target 'cfp-999' is not in"),
        (["{a},dup_keep,bob,,,,{u}"], "line 2: target '{u}' is not in"),
        (["{a},dup_keep,bob,,,,{a}"], "line 2: dup_keep names '{a}' as its own target"),
        ([",identity_merge,bob,,,cfp-001,cfp-001"], "identity_merge names 'cfp-001' as its own target"),
        (["{a},reject,bob,,,,", "{b},accept,bob,,,,", "{a},accept,bob,,,,"], "line 4: bob already decided"),
    ],
)
def test_import_refuses_rows_that_would_apply_wrongly_or_not_at_all(workdir, tmp_path, rows, message):
    a, b = _ids(workdir)[:2]
    u = "f" * 64  # a well-formed content id of no image of this workdir
    csv = tmp_path / "in.csv"
    csv.write_text(HEADER + "".join(r.format(a=a, b=b, u=u) + "\n" for r in rows))
    code, output = _import(workdir, csv)
    assert code == 1 and message.format(a=a, u=u) in output.replace("\n", "")
    assert not store_path(workdir).exists() or DecisionStore(store_path(workdir)).events().empty


def test_import_refuses_an_unknown_column_rather_than_dropping_it(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("image_id,decision,reviewer,time,note,identityid\n,identity_drop,bob,,,cfp-001\n")
    with pytest.raises(CurateError, match=r"unknown column.*identityid"):
        read_csv(csv)


def test_reimporting_a_file_without_times_keeps_the_later_decision(workdir, tmp_path):
    a, b = _ids(workdir)[:2]
    first = tmp_path / "first.csv"
    first.write_text(HEADER + f"{a},reject,alice,,,,\n{a},reject,alice,,,,\n{b},accept,alice,,,,\n")
    assert _import(workdir, first) == (0, "imported 2 decisions (1 already stored)\n")
    record_decisions(workdir, pd.DataFrame([{"image_id": a, "decision": "accept", "reviewer": "alice"}]))
    code, output = _import(workdir, first)  # the same file again: nothing new, alice's accept stands
    assert code == 0 and output.startswith("imported 0 decisions (3 already stored)")
    result = apply_decisions(workdir, options=LOCAL)
    assert result.changed == {}
    assert pd.read_parquet(workdir / "review").set_index("image_id").loc[a, "status"] == "ok"


def test_a_history_file_imports_without_its_undone_decisions(workdir, tmp_path):
    a = _ids(workdir)[0]
    csv = tmp_path / "history.csv"
    csv.write_text(
        "image_id,decision,reviewer,time,note,identity_id,target,seq,undone\n"
        f"{a},accept,alice,2026-12-02T10:00:00+00:00,,,,1,False\n"
        f"{a},reject,alice,2026-12-02T10:00:05+00:00,,,,2,True\n"
    )
    assert _import(workdir, csv) == (0, "imported 1 decisions (0 already stored)\n")
    apply_decisions(workdir, options=LOCAL)
    assert pd.read_parquet(workdir / "review").set_index("image_id").loc[a, "status"] == "ok"
