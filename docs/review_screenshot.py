"""Make ``docs/review.png``: the review page on a workdir of real images, after a few keyboard decisions.

    python docs/review_screenshot.py WORKDIR [--out docs/review.png]

WORKDIR must hold a rank or dedup stage (the README's CFP run, or any other). The page is served by
``curate review serve`` and photographed in Debian's headless Chromium through Playwright.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CURATE_CHROMIUM", "/usr/bin/chromium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("review.png"))
    args = parser.parse_args()
    command = [sys.executable, "-m", "curate", "-w", str(args.workdir), "review", "serve"]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        url = ""
        while not url.startswith("http"):
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                raise SystemExit(f"curate review serve exited with {server.returncode}")
            url = line.partition("review: ")[2].strip() or url
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url + "&reviewer=alice")
            page.wait_for_selector(".tile.cursor")
            # first identity: accept ten, mark the last two wrong identity; then two blocks on, a few more
            for key in ["a"] * 10 + ["w", "w", "n", "n", "a", "a", "a", "s", "a"]:
                page.keyboard.press(key)
                time.sleep(0.4)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(args.out), full_page=False)
            browser.close()
    finally:
        server.kill()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
