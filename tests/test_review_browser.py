"""The review page end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A reviewer works through a block by keyboard; the server process is killed (SIGKILL) and started again;
every decision and the reviewer's place are still there; the decisions are applied and the manifest checked.
The same server refuses requests without the token and does not serve files outside the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from review_fixtures import make_workdir

from curate.executor import ExecutorOptions
from curate.review import apply_decisions, export_review, read_plan

CHROMIUM = os.environ.get("CURATE_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789"

pytestmark = pytest.mark.slow


def _browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install it)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CURATE_CHROMIUM)")
    return sync_api


class Server:
    """``curate review serve`` as a real process; ``url`` is the address it printed."""

    def __init__(self, workdir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "curate", "-w", str(workdir), "review", "serve", "--token", TOKEN]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.url = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self.url:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"review server exited with {self.process.returncode}")
            if line.startswith("review: "):
                self.url = line.split(" ", 1)[1].strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url
        self.base = self.url.split("/?")[0]

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown handler runs
        self.process.wait(timeout=30)


@pytest.fixture
def review_workdir(tmp_path, data_dir) -> Path:
    workdir = tmp_path / "run"
    rows = make_workdir(workdir, data_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    # a crop inside the workdir that is a symlink to a file outside every root of the run
    secret = outside / "secret.jpg"
    shutil.copy(rows[-1]["path"], secret)
    link = workdir / "crops" / "evil.jpg"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    rows[-1]["crop_path"] = str(link)
    from review_fixtures import write_stage

    write_stage(workdir, "rank", rows)
    export_review(workdir, block=5, sheets=False)
    return workdir


def _decisions(page) -> list[str | None]:
    return page.eval_on_selector_all(".tile", "tiles => tiles.map(t => t.dataset.decision || null)")


def test_review_by_keyboard_survives_a_killed_server(review_workdir):
    sync_api = _browser()
    plan = read_plan(review_workdir / "_review" / "export")
    first = plan.items[plan.items["identity_id"] == plan.items["identity_id"].iloc[0]]
    block1 = first[first["block"] == 1]["image_id"].tolist()
    block2 = first[first["block"] == 2]["image_id"].tolist()
    server = Server(review_workdir)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            page.goto(server.url + "&reviewer=alice")
            page.wait_for_function("document.querySelectorAll('.tile').length === 5")
            assert page.eval_on_selector_all(".tile", "t => t.map(x => x.dataset.imageId)") == block1
            for key, expected in (("r", "reject"), ("w", "wrong_identity"), ("s", "unsure"), ("a", "accept")):
                count = len([d for d in _decisions(page) if d])
                page.keyboard.press(key)
                page.wait_for_selector(f".tile[data-index='{count}'][data-decision='{expected}']")
            page.keyboard.press("z")  # undo the accept of the fourth image
            page.wait_for_function("document.querySelectorAll('.tile[data-decision]').length === 3")
            page.keyboard.press("Shift+A")  # accept the rest of the block
            page.wait_for_function("document.querySelectorAll('.tile[data-decision]').length === 5")
            assert _decisions(page) == ["reject", "wrong_identity", "unsure", "accept", "accept"]
            page.keyboard.press("n")
            page.wait_for_function(f"document.querySelector('.tile').dataset.imageId === '{block2[0]}'")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("x")
            page.wait_for_selector(f".tile[data-image-id='{block2[1]}'][data-decision='reject']")
            page.keyboard.press("ArrowRight")  # the cursor moved on to the third image; now the fourth
            time.sleep(1.0)  # the position is saved 300 ms after the cursor stops
            browser.close()
        server.kill()
        server = Server(review_workdir)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            page.goto(server.url + "&reviewer=alice")
            page.wait_for_selector(".tile.cursor")
            # reopened where alice was: block 2, cursor on its fourth image, her decision still there
            assert page.eval_on_selector(".tile.cursor", "t => t.dataset.imageId") == block2[3]
            assert _decisions(page)[:2] == [None, "reject"]
            page.keyboard.press("p")
            page.wait_for_function(f"document.querySelector('.tile').dataset.imageId === '{block1[0]}'")
            assert _decisions(page) == ["reject", "wrong_identity", "unsure", "accept", "accept"]
            browser.close()
        _check_gate(server, plan)
    finally:
        server.kill()
    result = apply_decisions(review_workdir, options=ExecutorOptions(workers=1, processes=False))
    manifest = pd.read_parquet(review_workdir / "review").set_index("image_id")
    expected = dict(zip(block1, ["rejected_review", "rejected_review", "ok", "ok", "ok"], strict=True))
    expected[block2[1]] = "rejected_review"
    for image_id, status in expected.items():
        assert manifest.loc[image_id, "status"] == status, image_id
    assert "rejected in review by alice" in manifest.loc[block1[0], "reason"]
    assert "wrong identity in review by alice" in manifest.loc[block1[1], "reason"]
    assert manifest.loc[block1[2], "review_decision"] == "unsure"
    assert result.outcomes["applied"] == 6 and result.outcomes["undone"] == 1


def _check_gate(server: Server, plan) -> None:
    """The token guards every route; images outside the run are never served."""
    image_id = plan.items["image_id"].iloc[0]
    with httpx.Client(base_url=server.base, timeout=10) as client:
        for path in ("/", "/static/review.js", f"/img/{image_id}", "/api/state"):
            assert client.get(path).status_code == 403
            assert client.get(path, params={"token": "wrong"}).status_code == 403
        assert client.post("/api/decide", json={"reviewer": "eve", "decisions": []}).status_code == 403
        ok = {"token": TOKEN}
        assert client.get(f"/img/{image_id}", params=ok).headers["content-type"] == "image/jpeg"
        for path in (
            "/img/..%2F..%2F..%2Fetc%2Fpasswd",
            "/img/../../../etc/passwd",
            "/static/..%2F..%2Fcli.py",
        ):
            response = client.get(path, params=ok)
            assert response.status_code == 404 and b"root:" not in response.content
        evil = plan.items.loc[plan.items["image_path"].str.endswith("evil.jpg"), "image_id"].iloc[0]
        assert client.get(f"/img/{evil}", params=ok).status_code == 404  # symlink leaving the run
