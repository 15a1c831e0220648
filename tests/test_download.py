"""The URL-list collector against a real HTTP server on 127.0.0.1 serving real CFP JPEGs and bad cases."""

from __future__ import annotations

import csv
import hashlib
import json
import socket
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from httpserver import CaseServer, small_cfp_jpegs
from typer.testing import CliRunner

from curate import manifest
from curate.config import build_config
from curate.download.collector import Collector, interleave_by_host
from curate.download.store import ContentStore, Journal
from curate.errors import ConfigError
from curate.names import identity_id
from curate.stage import local_context
from curate.stages.download import COLUMNS, DownloadConfig, DownloadStage

FAST = {
    "connect_timeout_seconds": 1.0,
    "read_timeout_seconds": 0.5,
    "deadline_seconds": 1.5,
    "backoff_seconds": 0.02,
    "max_retries": 2,
    "max_bytes": 300_000,
    "concurrency": 16,
    "per_host_concurrency": 16,
}
LOCAL = {**FAST, "allowed_networks": ["127.0.0.0/8"]}


@pytest.fixture(scope="module")
def images(data_dir: Path) -> list[bytes]:
    return small_cfp_jpegs(data_dir, 6)


@pytest.fixture
def server(images: list[bytes]):
    with CaseServer(images, hang_seconds=1.5, trickle_interval=0.05) as running:
        yield running


@pytest.fixture
def connections(monkeypatch) -> list[tuple]:
    """Every TCP connection the HTTP client opens (a spy: the real connection is still made)."""
    opened: list[tuple] = []
    real = socket.create_connection

    def spy(address, *args, **kwargs):
        opened.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return opened


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["identity", "url", "rank", "query"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def collect(workdir: Path, source: Path, **settings) -> pa.Table:
    """Plan and run the stage on one shard, as the executor would."""
    stage = DownloadStage(build_config(DownloadConfig, {"source": source, **settings}))
    (table,) = stage.plan(workdir, 1).values()
    return stage.run_shard(table, local_context(workdir, "collect"))


def by_source(table: pa.Table) -> dict[str, dict]:
    return {row["source"]: row for row in table.to_pylist()}


def test_every_case_gets_a_status_and_reason(tmp_path, server, images):
    cases = {
        "/img/0.jpg": ("ok", ""),
        "/status/404": ("failed_download", "HTTP 404"),
        "/status/500": ("failed_download", "HTTP 500"),
        "/flaky/1.jpg": ("ok", ""),
        "/hang/2.jpg": ("ok", ""),
        "/loop/a": ("failed_download", "too many redirects (limit 5)"),
        "/chain/5/3.jpg": ("ok", ""),
        "/chain/6/3.jpg": ("failed_download", "too many redirects (limit 5)"),
        "/trickle.jpg": ("failed_download", "timeout after 1.5s (total deadline)"),
        "/endless.jpg": ("failed_download", "response larger than 300000 bytes"),
        "/claims-huge.jpg": ("failed_download", "response larger than 300000 bytes"),
        "/lie-small/0.jpg": ("failed_decode", "cannot decode JPEG"),
        "/lie-big/0.jpg": (
            "failed_download",
            "connection error (RemoteProtocolError): peer closed connection",
        ),
        "/page.jpg": ("failed_decode", "not an image: HTML document"),
        "/bomb/50000x50000.png": ("unsafe_input", "decompression bomb guard"),
        "/bomb/9000x9000.png": ("unsafe_input", "too many pixels: 9000x9000"),
        "/truncated/0.jpg": ("failed_decode", "cannot decode JPEG"),
        "/redirect?to=ftp://example.com/a.jpg": ("failed_download", "unsupported scheme ftp"),
    }
    urls = {server.url(path): expected for path, expected in cases.items()}
    urls["ftp://example.com/b.jpg"] = ("failed_download", "unsupported scheme ftp")
    urls[""] = ("failed_download", "line 21: empty URL")
    source = write_csv(tmp_path / "urls.csv", [{"identity": "Case Person", "url": url} for url in urls])

    started = time.monotonic()
    table = collect(tmp_path / "work", source, **LOCAL)
    assert time.monotonic() - started < 15

    assert table.num_rows == len(urls) and table.column("source").to_pylist() == list(urls)
    for name, dtype in COLUMNS.items():
        assert table.schema.field(name).type == dtype, name
    rows = by_source(table)
    for url, (status, reason) in urls.items():
        assert rows[url]["status"] == status, (url, rows[url]["reason"])
        assert rows[url]["reason"].startswith(reason), (url, rows[url]["reason"])
        stored = rows[url]["path"] is not None
        assert stored == (status == "ok"), url

    good = rows[server.url("/img/0.jpg")]
    assert Path(good["path"]).read_bytes() == images[0]
    assert good["image_id"] == hashlib.sha256(images[0]).hexdigest()
    assert (
        Path(good["path"])
        == tmp_path.resolve() / "work" / "store" / good["image_id"][:2] / f"{good['image_id']}.jpg"
    )
    assert (good["format"], good["http_status"], good["file_bytes"], good["n_frames"]) == (
        "JPEG",
        200,
        len(images[0]),
        1,
    )
    assert good["width"] > 0 and good["height"] > 0 and good["fetch_seconds"] > 0
    assert rows[server.url("/chain/5/3.jpg")]["image_id"] == hashlib.sha256(images[3]).hexdigest()
    assert rows[server.url("/status/404")]["http_status"] == 404
    assert rows[server.url("/lie-small/0.jpg")]["file_bytes"] == 1000
    assert rows[server.url("/bomb/9000x9000.png")]["image_id"] is not None  # bytes were read, not stored
    assert rows[server.url("/trickle.jpg")]["fetch_seconds"] < 1.5 + 0.5 + 0.5  # deadline + one read timeout

    # retries: 5xx, timeouts and broken bodies are retried (max_retries=2), a 404 never
    assert server.hits["/status/404"] == 1
    assert server.hits["/status/500"] == 3
    assert server.hits["/flaky/1.jpg"] == 2
    assert server.hits["/hang/2.jpg"] == 2
    assert server.hits["/lie-big/0.jpg"] == 3
    assert server.hits["/loop/a"] + server.hits["/loop/b"] == 6  # 5 redirects followed, the 6th refused


def test_private_addresses_refused_before_connecting(tmp_path, server, connections):
    urls = {
        server.url("/img/0.jpg"): "blocked loopback address 127.0.0.1",
        f"http://localhost:{server.port}/img/1.jpg": "blocked loopback address",
        "http://10.255.255.1/face.jpg": "blocked private address 10.255.255.1",
        "http://169.254.169.254/latest/meta-data": "blocked link-local address 169.254.169.254",
        "http://[::ffff:192.168.1.1]/x.jpg": "blocked private address",
    }
    source = write_csv(tmp_path / "urls.csv", [{"identity": "A", "url": url} for url in urls])
    rows = by_source(collect(tmp_path / "work", source, **FAST))
    for url, reason in urls.items():
        assert rows[url]["status"] == "failed_download"
        assert rows[url]["reason"].startswith(reason), rows[url]["reason"]
    assert connections == [] and server.hit_count() == 0


def test_every_redirect_hop_is_checked(tmp_path, server, connections):
    loopback_only = {**FAST, "allowed_networks": ["127.0.0.0/8", "::1/128"]}
    urls = {
        server.url("/redirect?to=http://10.255.255.1/face.jpg"): (
            "failed_download",
            "blocked private address",
        ),
        server.url(f"/redirect?to=http://127.0.0.1:{server.port}/img/2.jpg"): ("ok", ""),
    }
    source = write_csv(tmp_path / "urls.csv", [{"identity": "A", "url": url} for url in urls])
    rows = by_source(collect(tmp_path / "work", source, **loopback_only))
    for url, (status, reason) in urls.items():
        assert (rows[url]["status"], rows[url]["reason"][: len(reason)]) == (status, reason)
    assert all(address[0] == "127.0.0.1" for address in connections) and connections


def test_same_bytes_stored_once_best_rank_kept_within_identity(tmp_path, server, images):
    rows = [
        {"identity": "Ann Lee", "url": server.url("/img/0.jpg?copy=a"), "rank": 3},
        {"identity": "Ann Lee", "url": server.url("/img/1.jpg"), "rank": 1},
        {"identity": "Ann Lee", "url": server.url("/img/0.jpg?copy=b"), "rank": 2},
        {"identity": "Bo Chan", "url": server.url("/img/0.jpg?copy=c"), "rank": 1},
    ]
    table = collect(tmp_path / "work", write_csv(tmp_path / "urls.csv", rows), **LOCAL)
    out = by_source(table)
    kept = server.url("/img/0.jpg?copy=b")
    assert out[kept]["status"] == "ok"
    assert out[server.url("/img/0.jpg?copy=a")]["status"] == "exact_duplicate"
    assert out[server.url("/img/0.jpg?copy=a")]["reason"] == f"same bytes as {kept}"
    assert out[server.url("/img/0.jpg?copy=c")]["status"] == "ok"  # another identity: the exact stage's job
    assert table.column("search_rank").to_pylist() == [3, 1, 2, 1]
    stored = [p for p in (tmp_path / "work" / "store").rglob("*.jpg")]
    assert sorted(p.read_bytes() for p in stored) == sorted([images[0], images[1]])


def test_rerun_fetches_nothing_already_done(tmp_path, server):
    rows = [{"identity": "Ann Lee", "url": server.url(f"/img/{i}.jpg")} for i in range(4)]
    rows.append({"identity": "Ann Lee", "url": server.url("/status/404")})
    source = write_csv(tmp_path / "urls.csv", rows)
    first = collect(tmp_path / "work", source, **LOCAL)
    hits = server.hit_count()
    assert hits == 5
    again = collect(tmp_path / "work", source, **LOCAL)
    assert server.hit_count() == hits
    for key in ("image_id", "path", "status", "reason", "width", "height", "http_status"):
        assert again.column(key) == first.column(key), key
    # a stored file that went missing is fetched again, and only that one
    Path(first.column("path")[2].as_py()).unlink()
    third = collect(tmp_path / "work", source, **LOCAL)
    assert server.hit_count() == hits + 1 and server.hits["/img/2.jpg"] == 2
    assert Path(third.column("path")[2].as_py()).is_file()


def test_changed_settings_decode_stored_bytes_again_without_fetching(tmp_path, server):
    rows = [{"identity": "Ann Lee", "url": server.url(f"/img/{i}.jpg")} for i in range(3)]
    rows.append({"identity": "Ann Lee", "url": server.url("/endless.jpg")})
    source = write_csv(tmp_path / "urls.csv", rows)
    first = collect(tmp_path / "work", source, **LOCAL)
    assert first.column("status").to_pylist() == ["ok"] * 3 + ["failed_download"]
    hits = server.hit_count()
    tiny = collect(tmp_path / "work", source, **{**LOCAL, "max_pixels": 100})
    assert tiny.column("status").to_pylist()[:3] == ["unsafe_input"] * 3
    assert all(reason.startswith("too many pixels") for reason in tiny.column("reason").to_pylist()[:3])
    # stored images were decoded again from the store; only the failure under old limits was fetched again
    assert server.hit_count() == hits + 1 and server.hits["/endless.jpg"] == 2


def test_journal_of_a_killed_run_is_honoured(tmp_path, server):
    rows = [{"identity": "Ann Lee", "url": server.url(f"/img/{i}.jpg")} for i in range(6)]
    source = write_csv(tmp_path / "urls.csv", rows)
    collect(tmp_path / "work", source, **{**LOCAL, "concurrency": 1})
    journal = tmp_path / "work" / "store" / "_journal" / "00000.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    assert len(lines) == 6
    # a kill after three complete lines and half of the fourth
    journal.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    done = {json.loads(line)["url"] for line in lines[:3]}
    before = dict(server.hits)
    table = collect(tmp_path / "work", source, **LOCAL)
    assert set(table.column("status").to_pylist()) == {"ok"}
    for row in rows:
        path = row["url"].removeprefix(server.url(""))
        assert server.hits[path] - before[path] == (0 if row["url"] in done else 1), row["url"]
    parsed = [
        json.loads(line)
        for line in journal.read_text().splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert {entry["url"] for entry in parsed} == {row["url"] for row in rows}


def test_failed_downloads_retried_only_when_asked(tmp_path, server):
    source = write_csv(tmp_path / "urls.csv", [{"identity": "A", "url": server.url("/flaky/0.jpg")}])
    settings = {**LOCAL, "max_retries": 0}
    assert collect(tmp_path / "w", source, **settings).column("reason").to_pylist() == ["HTTP 500"]
    assert collect(tmp_path / "w", source, **settings).column("reason").to_pylist() == ["HTTP 500"]
    assert server.hits["/flaky/0.jpg"] == 1
    again = collect(tmp_path / "w", source, **settings, retry_failed_downloads=True)
    assert again.column("status").to_pylist() == ["ok"] and server.hits["/flaky/0.jpg"] == 2


def test_per_host_concurrency_is_a_limit(tmp_path, images):
    with CaseServer(images, latency_seconds=0.1) as slow:
        rows = [{"identity": f"P{i}", "url": slow.url(f"/img/{i}.jpg?n={i}")} for i in range(8)]
        source = write_csv(tmp_path / "urls.csv", rows)
        table = collect(tmp_path / "w", source, **{**LOCAL, "concurrency": 8, "per_host_concurrency": 2})
        assert set(table.column("status").to_pylist()) == {"ok"}
        assert slow.max_in_flight == 2


def test_plan_reads_csv_and_jsonl_and_shards_by_identity(tmp_path):
    csv_path = tmp_path / "urls.csv"
    csv_path.write_text(
        "Name,URL,Query\nAnn Lee,http://a.example/1.jpg,ann lee\nBo Chan,http://b.example/1.jpg,\n"
        "ann_lee,http://a.example/2.jpg,ann lee\n,http://c.example/1.jpg,\n"
    )
    jsonl_path = tmp_path / "urls.jsonl"
    records = [
        {"identity": "Ann Lee", "url": "http://a.example/1.jpg", "rank": 4, "query": "ann lee"},
        {"identity": "Bo Chan", "url": "http://b.example/1.jpg", "rank": "x"},
    ]
    jsonl_path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    from_csv = DownloadStage(build_config(DownloadConfig, {"source": csv_path})).plan(tmp_path, 4)
    assert sorted(from_csv) == [0, 1, 2, 3]
    rows = []
    for shard, table in from_csv.items():
        for row in table.to_pylist():
            assert manifest.shard_of(row["identity_id"], 4) == shard
            rows.append(row)
    ann = [r for r in rows if r["identity_id"] == identity_id("Ann Lee")]
    assert [(r["search_rank"], r["query"], r["status"]) for r in ann] == [
        (1, "ann lee", "ok"),
        (2, "ann lee", "ok"),
    ]
    nameless = next(r for r in rows if r["source"] == "http://c.example/1.jpg")
    assert (nameless["status"], nameless["reason"]) == ("unsafe_input", "line 5: no identity name")

    from_jsonl = DownloadStage(build_config(DownloadConfig, {"source": jsonl_path})).plan(tmp_path, 1)
    out = from_jsonl[0].to_pylist()
    assert (out[0]["search_rank"], out[0]["identity_name"], out[0]["status"]) == (4, "Ann Lee", "ok")
    assert out[1]["status"] == "unsafe_input" and "search rank 'x'" in out[1]["reason"]
    assert out[1]["search_rank"] is None


def test_bad_inputs_and_settings_raise_config_errors(tmp_path):
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("person,link\nAnn,http://a.example/1.jpg\n")
    with pytest.raises(ConfigError, match=r"identity \(or name\) column and a url column"):
        DownloadStage(build_config(DownloadConfig, {"source": bad_header})).plan(tmp_path, 1)
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"identity": "A", "url": "http://a.example/"}\n{oops\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2"):
        DownloadStage(build_config(DownloadConfig, {"source": bad_json})).plan(tmp_path, 1)
    good = write_csv(tmp_path / "ok.csv", [])
    for key, value in [("concurrency", 0), ("deadline_seconds", 0), ("allowed_networks", ["10.0.0.0/33"])]:
        with pytest.raises(ConfigError) as caught:
            build_config(DownloadConfig, {"source": good, key: value})
        assert caught.value.key == key
    with pytest.raises(ConfigError, match=r"\.csv or \.jsonl"):
        build_config(DownloadConfig, {"source": tmp_path / "urls.txt"})


def test_empty_shard_gets_every_column(tmp_path, server):
    source = write_csv(tmp_path / "urls.csv", [{"identity": "Ann Lee", "url": server.url("/img/0.jpg")}])
    stage = DownloadStage(build_config(DownloadConfig, {"source": source, **LOCAL}))
    planned = stage.plan(tmp_path / "w", 8)
    empty = next(shard for shard, table in planned.items() if table.num_rows == 0)
    out = stage.run_shard(planned[empty], local_context(tmp_path / "w", "collect", shard=empty, n_shards=8))
    assert out.num_rows == 0 and all(out.schema.field(name).type == dtype for name, dtype in COLUMNS.items())
    assert server.hit_count() == 0


def test_cli_collect_url_list(tmp_path, server, images):
    from curate.cli import app

    rows = [{"identity": f"Person {i % 2}", "url": server.url(f"/img/{i}.jpg")} for i in range(4)]
    rows.append({"identity": "Person 0", "url": server.url("/status/404")})
    source = write_csv(tmp_path / "urls.csv", rows)
    workdir = tmp_path / "w"
    args = ["-w", str(workdir), "--workers", "1", "--shards", "2", "collect", str(source)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 0, refused.output
    assert set(pd.read_parquet(workdir / "collect").reason.str[:24]) == {"blocked loopback address"}
    result = CliRunner().invoke(app, [*args, "--allowed-networks", "127.0.0.0/8", "--overwrite"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(workdir / "collect")
    assert sorted(frame.status) == ["failed_download"] + ["ok"] * 4
    assert set(frame[frame.status == "ok"].image_id) == {hashlib.sha256(b).hexdigest() for b in images[:4]}


def test_interleave_spreads_hosts():
    urls = ["http://a.example/1", "http://a.example/2", "http://a.example/3", "http://b.example/1", "bad url"]
    assert interleave_by_host(urls) == [
        "http://a.example/1",
        "http://b.example/1",
        "bad url",
        "http://a.example/2",
        "http://a.example/3",
    ]


def test_a_resume_with_other_concurrency_keeps_finished_shards(tmp_path, server):
    """Concurrency decides speed, not outcomes: changing it neither refuses the run nor redoes shards;
    a setting that decides outcomes still refuses until --overwrite."""
    from curate.cli import app

    rows = [{"identity": f"Person {i % 2}", "url": server.url(f"/img/{i}.jpg")} for i in range(4)]
    source = write_csv(tmp_path / "urls.csv", rows)
    workdir = tmp_path / "w"
    args = ["-w", str(workdir), "--workers", "1", "--shards", "2", "collect", str(source)]
    local = ["--allowed-networks", "127.0.0.0/8"]
    first = CliRunner().invoke(app, [*args, *local, "--concurrency", "8"])
    assert first.exit_code == 0, first.output
    markers = {p.name: p.read_bytes() for p in (workdir / "collect" / "_done").iterdir()}
    hits = server.hit_count()
    again = CliRunner().invoke(app, [*args, *local, "--concurrency", "2", "--per-host-concurrency", "1"])
    assert again.exit_code == 0, again.output
    assert {p.name: p.read_bytes() for p in (workdir / "collect" / "_done").iterdir()} == markers
    assert server.hit_count() == hits
    refused = CliRunner().invoke(app, [*args, *local, "--max-bytes", "1000"])
    assert refused.exit_code != 0 and "another config" in refused.output
    assert "max_bytes: 20000000 -> 1000" in " ".join(refused.output.split())


def test_an_interrupt_between_downloads_cancels_the_queued_ones(tmp_path, images):
    """Ctrl-C landing while the collector handles a finished download (not while it waits for one) leaves
    nothing queued: with futures submitted up front and no cancel, the pool fetched all 40 before stopping."""
    calls = []

    def interrupted(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    with CaseServer(images, latency_seconds=0.2) as slow:
        urls = [slow.url(f"/img/{i % len(images)}.jpg?n={i}") for i in range(40)]
        settings = DownloadConfig(source=tmp_path / "urls.csv", **LOCAL).fetch_settings()
        store = ContentStore(tmp_path / "store")
        collector = Collector(settings, store, tmp_path / "journal.jsonl", concurrency=2, max_pixels=10**7)
        with pytest.raises(KeyboardInterrupt):
            collector.collect(urls, interrupted)
        assert calls == [1]
        assert slow.hit_count("/img/") <= 4, "only the downloads already under way finish"
    journal = Journal(tmp_path / "journal.jsonl").load()
    assert 1 <= len(journal) <= 4 and all(outcome.status == "ok" for outcome in journal.values())


def test_an_interrupt_stops_the_downloads_under_way_without_journalling_them(tmp_path, images):
    """Downloads under way when the run stops give up at their next read; they get no journal line, so a
    resume fetches them again (a 'failed_download' line would have kept them failed)."""

    def interrupted(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with CaseServer(images, trickle_interval=0.05) as server:
        image, trickles = server.url("/img/0.jpg"), [server.url(f"/trickle.jpg?n={i}") for i in range(2)]
        config = DownloadConfig(source=tmp_path / "urls.csv", **{**LOCAL, "deadline_seconds": 30.0})
        store = ContentStore(tmp_path / "store")
        collector = Collector(
            config.fetch_settings(), store, tmp_path / "journal.jsonl", concurrency=3, max_pixels=10**7
        )
        with pytest.raises(KeyboardInterrupt):
            collector.collect([image, *trickles], interrupted)  # the image finishes first; trickles never do
    journal = Journal(tmp_path / "journal.jsonl").load()
    assert list(journal) == [image] and journal[image].status == "ok"
