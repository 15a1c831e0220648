"""Review benchmark: export and apply on 100k rows, and how fast the page loads a block of 200.

A ``rank``-shaped manifest of N rows (500 identities x 200 images by default) is written with real CFP
photos as the image files (cycled), realistic scores and flags, and 1% of rows in borderline duplicate
pairs. Measured, each beside its floor (plain pandas/pyarrow doing the I/O alone):

- export (plan + Parquet + CSV, no contact sheets) vs. reading the manifest and writing the same rows once;
- one contact sheet of 200 real photos (cold thumbnails);
- recording one decision per row into the SQLite log (WAL, synchronous=FULL) in blocks of 200;
- apply (the ``review`` stage through the executor, one local worker) vs. read + pandas merge + write;
- the page: ``/api/block`` for a block of 200 (server-side time from the answer, and the HTTP round trip),
  the 200 thumbnails cold (first view: decode + resize) and warm (cached), then Chromium loading the page
  until all 200 images are shown (skipped when /usr/bin/chromium or playwright is missing).

    python bench/review.py [--rows 100000] [--data ../shared/data]

Results: ``bench/results/review.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate import manifest
from curate.executor import ExecutorOptions, marker_path
from curate.pipeline import WORKDIR_FILE
from curate.review import DecisionStore, Event, apply_decisions, export_review, read_plan
from curate.review.images import allowed_roots, contact_sheet
from curate.review.source import store_path

N_SHARDS = 8
TOKEN = "bench"


def build_manifest(workdir: Path, rows: int, per_identity: int, photos: list[Path]) -> pd.DataFrame:
    """A finished ``rank`` stage of ``rows`` rows; distinct image ids, photos cycled as the files."""
    rng = np.random.default_rng(0)
    index = np.arange(rows)
    image_ids = [hashlib.sha256(f"img{i}".encode()).hexdigest() for i in index]
    identity = [f"person-{i // per_identity:05d}" for i in index]
    score = rng.beta(5, 1.5, rows).astype("float32")
    pending = rng.random(rows) < 0.01
    partner = np.where(index % per_identity == per_identity - 1, index - 1, index + 1)
    frame = pd.DataFrame(
        {
            "image_id": image_ids,
            "identity_id": identity,
            "identity_name": identity,
            "source": [str(photos[i % len(photos)]) for i in index],
            "path": [str(photos[i % len(photos)]) for i in index],
            "status": np.where(score >= 0.5, "ok", "low_score"),
            "reason": np.where(score >= 0.5, "", "rank score below min_score 0.5"),
            "rank_score": score,
            "identity_purity": np.repeat(rng.uniform(0.8, 1.0, rows // per_identity + 1), per_identity)[
                :rows
            ],
            "overlap_with": "",
            "needs_review": pending,
            "review_reason": [
                f"possible near-duplicate of {image_ids[partner[i]]} (x): cosine 0.9" if pending[i] else None
                for i in index
            ],
        }
    )
    frame["identity_review"] = frame["identity_purity"] < 0.9
    (workdir / WORKDIR_FILE).parent.mkdir(parents=True, exist_ok=True)
    (workdir / WORKDIR_FILE).write_text(json.dumps({"n_shards": N_SHARDS}))
    shards = frame["identity_id"].map(lambda i: manifest.shard_of(i, N_SHARDS))
    for shard in range(N_SHARDS):
        table = pa.Table.from_pandas(frame[shards == shard], preserve_index=False)
        manifest.write_shard(table, manifest.shard_path(workdir, "rank", shard))
        marker_path(workdir, "rank", shard).parent.mkdir(parents=True, exist_ok=True)
        marker_path(workdir, "rank", shard).write_text("done\n")
    (workdir / "collect").mkdir(exist_ok=True)
    source = {"config": {"source": str(photos[0].parents[2])}}
    (workdir / "collect" / "_config.json").write_text(json.dumps(source))
    return frame


def timed(label: str, action, results: dict) -> object:
    started = time.perf_counter()
    value = action()
    results[label] = time.perf_counter() - started
    print(f"{label:58s} {results[label]:8.2f} s", flush=True)
    return value


def floor_io(workdir: Path, out: Path) -> None:
    """Reading the manifest and writing it once as Parquet and CSV: the I/O any export pays."""
    frame = pd.read_parquet(workdir / "rank")
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame), out / "floor.parquet", compression="zstd")
    frame.to_csv(out / "floor.csv", index=False)


def floor_apply(workdir: Path, decisions: pd.DataFrame, out: Path) -> None:
    """Read the manifest, merge one decision per image, set statuses, write: what apply must at least do."""
    frame = pd.read_parquet(workdir / "rank").merge(
        decisions[["image_id", "decision"]], on="image_id", how="left"
    )
    frame.loc[frame["decision"] == "reject", "status"] = "rejected_review"
    pq.write_table(pa.Table.from_pandas(frame), out / "floor_apply.parquet", compression="zstd")


def record_all(workdir: Path, plan_items: pd.DataFrame, decisions: pd.DataFrame) -> None:
    store = DecisionStore(store_path(workdir))
    events = [Event(d, "bench", i) for i, d in zip(decisions["image_id"], decisions["decision"], strict=True)]
    for start in range(0, len(events), 200):
        store.record(events[start : start + 200])
    store.close()


def page_figures(workdir: Path, results: dict) -> None:
    """Serve the page in a thread (uvicorn), time a block of 200 over HTTP and in Chromium."""
    import uvicorn

    from curate.review.launch import _bind
    from curate.review.server import create_app

    plan = read_plan(workdir / "_review" / "export")
    store = DecisionStore(store_path(workdir))
    app = create_app(workdir, plan, store, allowed_roots(workdir), TOKEN)
    sock = _bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    first = plan.identities["identity_id"].iloc[0]
    blocks = plan.items[plan.items["identity_id"] == first]
    try:
        with httpx.Client(base_url=base, headers={"X-Review-Token": TOKEN}, timeout=60) as client:
            while client.get("/api/state").status_code != 200:
                time.sleep(0.1)
            for label, block in (("cold", 1), ("warm", 1)):
                ids = blocks[blocks["block"] == block]["image_id"].tolist()
                answer = timed(
                    f"page: /api/block, block of {len(ids)} ({label} server)",
                    lambda block=block: client.get("/api/block", params={"identity": first, "block": block}),
                    results,
                )
                results[f"server_ms_{label}"] = answer.json()["server_ms"]
                print(f"{'   server-side time in the answer':58s} {answer.json()['server_ms'] / 1000:8.3f} s")
                timed(
                    f"page: its {len(ids)} thumbnails, 6 at a time like a browser ({label})",
                    lambda ids=ids: fetch_all(client, ids),
                    results,
                )
            keystroke(client, blocks["image_id"].iloc[0], results)
        # 'n' goes to the next block: block 2 of this identity, or the next identity's first block
        following = blocks[blocks["block"] == 2]
        if following.empty:
            after = plan.identities["identity_id"].iloc[1]
            following = plan.items[(plan.items["identity_id"] == after) & (plan.items["block"] == 1)]
        browser_figures(base, following["image_id"].iloc[0], results)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def keystroke(client: httpx.Client, image_id: str, results: dict) -> None:
    """What one key press costs the server: store a decision, then the progress the page reloads."""
    body = {"reviewer": "bench2", "decisions": [{"image_id": image_id, "decision": "accept"}]}
    timed(
        "page: one decision stored (POST /api/decide)", lambda: client.post("/api/decide", json=body), results
    )
    timed(
        "page: progress after it (GET /api/state, all identities)", lambda: client.get("/api/state"), results
    )


def fetch_all(client: httpx.Client, ids: list[str]) -> None:
    """GET every thumbnail, six requests in flight (a browser's connections per host)."""
    with ThreadPoolExecutor(6) as pool:
        for response in pool.map(lambda i: client.get(f"/img/{i}"), ids):
            response.raise_for_status()


def browser_figures(base: str, next_first: str, results: dict) -> None:
    """Chromium: open the page until every image of the first block is shown (warm thumbnails)."""
    if not Path("/usr/bin/chromium").exists():
        print("browser: skipped (no /usr/bin/chromium)")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser: skipped (playwright not installed)")
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        script = "() => [...document.images].filter(i => i.complete && i.naturalWidth).length >= 200"

        def load() -> None:
            page.goto(f"{base}/?token={TOKEN}&reviewer=bench")
            page.wait_for_function(script, timeout=120_000)

        timed("browser: open page until 200 thumbnails shown (warm)", load, results)
        timed(
            "browser: next block (n) until its 200 tiles are drawn",
            lambda: (
                page.keyboard.press("n"),
                page.wait_for_function(f"document.querySelector('.tile').dataset.imageId === '{next_first}'"),
            ),
            results,
        )
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="review export/apply/page benchmark")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-identity", type=int, default=200)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    args = parser.parse_args()
    photos = sorted((args.data / "cfp" / "Data" / "Images").glob("*/frontal/*.jpg"))
    root = Path(tempfile.mkdtemp(prefix="bench-review-"))
    workdir, results = root / "run", {}
    try:
        timed(
            f"build a {args.rows:,}-row rank manifest",
            lambda: build_manifest(workdir, args.rows, args.per_identity, photos),
            results,
        )
        timed(
            "floor: read manifest + write Parquet and CSV once",
            lambda: floor_io(workdir, root / "floor"),
            results,
        )
        result = timed(
            "curate review export (plan, Parquet, CSV; no sheets)",
            lambda: export_review(workdir, block=200, sheets=False),
            results,
        )
        plan = read_plan(result.out)
        # the sheet uses the last identity, so the page's first block still meets cold thumbnails
        last = plan.items["identity_id"].iloc[-1]
        first = plan.items[(plan.items["identity_id"] == last) & (plan.items["block"] == 1)]
        timed(
            "one contact sheet of 200 real photos (cold thumbnails)",
            lambda: contact_sheet(workdir, first, allowed_roots(workdir), root / "sheet.png"),
            results,
        )
        rng = np.random.default_rng(1)
        choice = rng.choice(
            ["accept", "reject", "wrong_identity", "unsure"], len(plan.items), p=[0.85, 0.08, 0.05, 0.02]
        )
        decisions = pd.DataFrame({"image_id": plan.items["image_id"], "decision": choice})
        timed(
            f"record {len(decisions):,} decisions (blocks of 200, WAL, fsync)",
            lambda: record_all(workdir, plan.items, decisions),
            results,
        )
        timed("floor: read + merge decisions + write", lambda: floor_apply(workdir, decisions, root), results)
        timed(
            "curate review apply (review stage, 1 local worker)",
            lambda: apply_decisions(workdir, options=ExecutorOptions(workers=1, processes=False)),
            results,
        )
        page_figures(workdir, results)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()} on {os.cpu_count()} CPUs")
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
