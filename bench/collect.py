"""Download throughput of the URL-list collector against the local test server.

Serves ``--images`` URLs (small real CFP JPEGs, cycled, made distinct by a query string) from the same
127.0.0.1 server the tests use (in its own process, so it does not share the client's interpreter lock),
with an artificial per-request latency so that concurrency matters, and runs the ``collect`` download
stage (fetch, sha256, decode, store) on one shard at each concurrency.

    /work/venv/bin/python bench/collect.py --images 2000 --concurrency 1 8 32 --latency-ms 20

Reads CFP from ``--data-dir`` (default ``../shared/data``); cite Sengupta et al., WACV 2016, with figures.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test server lives beside the tests

from httpserver import CaseServer, small_cfp_jpegs  # noqa: E402

from curate.config import build_config  # noqa: E402
from curate.stage import local_context  # noqa: E402
from curate.stages.download import DownloadConfig, DownloadStage  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="URLs to download per run")
    parser.add_argument("--distinct", type=int, default=200, help="distinct CFP JPEGs cycled over the URLs")
    parser.add_argument("--max-image-bytes", type=int, default=20_000, help="largest CFP file to serve")
    parser.add_argument("--identities", type=int, default=100, help="identities the URLs are spread over")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="downloads in flight")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="server delay before each answer")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    return parser.parse_args()


def serve(images: list[bytes], latency_seconds: float, pipe) -> None:
    """Child process: run the test server, send its port, stay up until told to stop."""
    with CaseServer(images, latency_seconds=latency_seconds) as server:
        pipe.send(server.port)
        pipe.recv()


def write_list(path: Path, port: int, count: int, distinct: int, identities: int) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "url", "rank"])
        for i in range(count):
            url = f"http://127.0.0.1:{port}/img/{i % distinct}.jpg?n={i}"
            # contiguous blocks per identity: no identity lists the same bytes twice
            writer.writerow([f"Person {i * identities // count}", url, i])


def run_once(source: Path, concurrency: int) -> tuple[float, dict[str, int], int]:
    """Run the stage on a fresh work folder; return (seconds, rows per status, bytes fetched)."""
    settings = {
        "source": source,
        "concurrency": concurrency,
        "per_host_concurrency": concurrency,  # one host here, so the host limit must not be the bottleneck
        "allowed_networks": ["127.0.0.0/8"],  # the local test server
    }
    stage = DownloadStage(build_config(DownloadConfig, settings))
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as workdir:
        (table,) = stage.plan(Path(workdir), 1).values()
        ctx = local_context(Path(workdir), "collect")
        started = time.perf_counter()
        out = stage.run_shard(table, ctx)
        seconds = time.perf_counter() - started
    counts: dict[str, int] = {}
    for status in out.column("status").to_pylist():
        counts[status] = counts.get(status, 0) + 1
    return seconds, counts, int(ctx.stats["fetched_bytes"])


def main() -> None:
    args = parse_args()
    images = small_cfp_jpegs(args.data_dir, args.distinct, args.max_image_bytes)
    mean_kb = sum(map(len, images)) / len(images) / 1024
    latency = f"latency {args.latency_ms:g} ms per request"
    print(f"server: 127.0.0.1 (own process), {latency}, {len(images)} distinct CFP JPEGs")
    print(
        f"        (mean {mean_kb:.1f} KiB, at most {args.max_image_bytes} bytes), {args.images} URLs per run"
    )
    print(f"client: collect stage on one shard (fetch + sha256 + decode + store), {os.cpu_count()} CPUs")
    print(f"{'concurrency':>11} {'seconds':>8} {'images/s':>9} {'MiB/s':>7}  statuses")
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve, args=(images, args.latency_ms / 1000, theirs), daemon=True
    )
    child.start()
    try:
        port = ours.recv()
        with tempfile.TemporaryDirectory(prefix="curate-bench-list-") as tmp:
            source = Path(tmp) / "urls.csv"
            write_list(source, port, args.images, len(images), args.identities)
            for concurrency in args.concurrency:
                seconds, counts, fetched = run_once(source, concurrency)
                statuses = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                rate, mib = args.images / seconds, fetched / seconds / 2**20
                print(f"{concurrency:>11} {seconds:>8.2f} {rate:>9.1f} {mib:>7.2f}  {statuses}", flush=True)
    finally:
        ours.send("stop")
        child.join(timeout=10)


if __name__ == "__main__":
    main()
