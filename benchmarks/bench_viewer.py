"""The viewer on a run of 100,000 questions: server memory and start-up, and how fast Chromium draws pages.

Issue 25 (finding 9) measured the old viewer on a 100k-question run (137 MB of traces): 1.08 GB of
server memory, a 25 MB JSON index, 127 s for Chromium to draw it (every row in the DOM). Goals: the
first page drawn within 2 s of opening; server memory at most 300 MB.

Steps: write a generated run (:func:`scireflect.testing.large_run.write_large_run`, about 1.4 kB a
trace line); start ``scireflect view RUN --no-browser`` in its own process and time it until it
prints its URL (the index is read by then); open the page in headless Chromium (Debian's
``/usr/bin/chromium`` through ``playwright``) and time the first page of rows, the next page, a
status filter, a sort by tokens and an id search, each until its rows are drawn; the review page and
five labels by keyboard, each until the next trace is drawn (issue 26: within 200 ms); then read the
server's peak resident memory (``VmHWM``) and the bytes of the ``/api/questions`` page.

    python benchmarks/bench_viewer.py [--questions 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("SCIREFLECT_CHROMIUM", "/usr/bin/chromium")


def _memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _timed(page, action, selector: str) -> float:
    started = time.perf_counter()
    action()
    page.wait_for_selector(selector, timeout=120_000)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the run here and keep it (default: a temporary directory)")
    args = parser.parse_args(argv)
    from playwright.sync_api import expect, sync_playwright

    from scireflect.testing.large_run import write_large_run

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        started = time.perf_counter()
        write_large_run(run_dir, args.questions)
        size_mb = (run_dir / "traces.jsonl").stat().st_size / 1e6
        print(f"run: {args.questions} questions, traces.jsonl {size_mb:.0f} MB (written in {time.perf_counter() - started:.1f} s)")

        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "scireflect.cli", "view", str(run_dir), "--port", "0", "--no-browser"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            url = next(m.group(0) for line in server.stdout if (m := re.search(r"http://127\.0\.0\.1:\d+/", line)))
            start_s = time.perf_counter() - started
            api = urllib.request.urlopen(url + "api/questions", timeout=60).read()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                first = _timed(page, lambda: page.goto(url), "#questions tbody tr")
                rows = page.locator("#questions tbody tr").count()
                nxt = _timed(page, lambda: page.click("#next"), '#questions tr[data-id="q-000200"]')
                started = time.perf_counter()
                page.select_option("#f-status", "rejected")
                expect(page.locator("#count")).to_contain_text(" of ", timeout=120_000)
                page.wait_for_selector("#questions tbody tr.status-rejected")
                expect(page.locator("#questions tbody tr:not(.status-rejected)")).to_have_count(0, timeout=120_000)
                filt = time.perf_counter() - started
                started = time.perf_counter()
                page.click('#questions th[data-sort="tokens"]')
                expect(page.locator("#page")).to_have_text(re.compile(r"^page 1 of"), timeout=120_000)
                sort = time.perf_counter() - started
                page.select_option("#f-status", "")
                started = time.perf_counter()
                page.fill("#f-id", "q-09999")
                expect(page.locator("#count")).to_have_text(re.compile(r"^\d+ of \d+ questions$"), timeout=120_000)
                search = time.perf_counter() - started
                heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
                # Review (issue 26): the first review page, then "v" (label valid) until the next trace is drawn.
                review_first = _timed(page, lambda: page.goto(url + "review?pos=0"), "#review-bar")
                review_next = []
                for pos in range(1, 6):
                    started = time.perf_counter()
                    page.keyboard.press("v")
                    page.wait_for_url(f"**/review?pos={pos}", timeout=120_000, wait_until="domcontentloaded")
                    page.wait_for_selector("#review-bar")
                    review_next.append(time.perf_counter() - started)
                browser.close()
            peak_mb, now_mb = _memory_kb(server.pid, "VmHWM") / 1024, _memory_kb(server.pid, "VmRSS") / 1024
        finally:
            server.terminate()
            server.wait(10)
    print(f"server: ready in {start_s:.1f} s (index read), peak memory {peak_mb:.0f} MB, {now_mb:.0f} MB after the pages")
    print(f"first /api/questions page: {len(api) / 1e3:.0f} kB")
    print(f"Chromium: first page ({rows} rows) drawn {first:.2f} s after opening; next page {nxt:.2f} s; "
          f"status filter {filt:.2f} s; sort by tokens {sort:.2f} s; id search {search:.2f} s; JS heap {heap / 1e6:.0f} MB")
    print(f"review: first trace {review_first:.2f} s; next trace after a label (median of 5) "
          f"{sorted(review_next)[2] * 1000:.0f} ms (max {max(review_next) * 1000:.0f} ms)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
