"""The viewer end to end in headless Chromium (Debian's ``chromium`` + the ``playwright`` package).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and ``pip install playwright``; the
browser bundles of ``playwright install`` are not used. Skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SCIREFLECT_CHROMIUM", "/usr/bin/chromium")
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")

from scireflect.viewer import serve  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "traces" / "sample_run"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1280, 800


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.mark.timeout(120)
def test_filter_open_rejected_question_see_attempts_and_diff(browser, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    server = serve(run_dir, 0, poll_ms=250)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(server.url)
        page.wait_for_selector("#questions tbody tr")
        assert page.locator("#questions tbody tr").count() == 6
        assert page.locator("#count").inner_text() == "6 of 6 questions"

        # Filter to rejected questions: one row, and the filter is kept in the URL.
        page.select_option("#f-status", "rejected")  # filtered on the server
        sync_api.expect(page.locator("#count")).to_have_text("1 of 6 questions")
        rows = page.locator("#questions tbody tr")
        assert rows.count() == 1 and "mmlu-hs-chem-0042" in rows.first.inner_text()
        assert "choice_mismatch" in rows.first.inner_text()
        assert "status=rejected" in page.url
        index_png = tmp_path / "index-rejected.png"
        page.screenshot(path=str(index_png))

        # Live update: a question finishes while the page is open; it appears without a reload.
        page.select_option("#f-status", "")
        record = json.loads((FIXTURE / "traces.jsonl").read_text().splitlines()[0])
        record["id"] = "math-frac-live"
        with open(run_dir / "traces.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        page.wait_for_selector('#questions tr[data-id="math-frac-live"]', timeout=10_000)
        assert page.locator("#questions tbody tr").count() == 7
        page.select_option("#f-status", "rejected")

        # Open it: attempts side by side, verdicts, critiques, the diff, math rendered by KaTeX.
        page.locator("#questions tbody tr a").first.click()
        page.wait_for_selector("article.attempt")
        page.wait_for_function("document.querySelectorAll('.katex').length > 0", timeout=10_000)
        assert page.locator("article.attempt").count() == 4
        assert page.locator("article.attempt.bad").count() == 3 and page.locator("article.attempt.undecided").count() == 1
        boxes = [page.locator("article.attempt").nth(i).bounding_box() for i in range(2)]
        assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2 and boxes[1]["x"] > boxes[0]["x"] + 200  # side by side
        assert page.locator("table.diff").count() == 3
        assert page.locator("table.diff .diff_sub, table.diff .diff_add, table.diff .diff_chg").count() > 0
        assert "Attempt 1 → attempt 2" in page.locator("section.diffs").inner_text()
        assert page.locator(".critique").count() == 2
        assert "reference answer: B" in page.locator(".reference").inner_text()
        # The model's <script> is shown as text, never run.
        assert "<script>alert('x')</script>" in page.locator("#attempt-1 > .trace-text").inner_text()
        assert dialogs == [] and errors == []
        question_png = tmp_path / "question-rejected.png"
        page.screenshot(path=str(question_png), full_page=True)

        # Nothing but the viewer itself was fetched (KaTeX is local).
        assert requests and all(url.startswith(server.url) for url in requests), [u for u in requests if not u.startswith(server.url)]
        assert any(url.endswith(".woff2") for url in requests)
    finally:
        page.close()
        server.close()

    assert png_size(index_png) == (WIDTH, HEIGHT) and index_png.stat().st_size > 10_000
    width, height = png_size(question_png)
    assert width == WIDTH and height > HEIGHT and question_png.stat().st_size > 50_000
    if os.environ.get("SCIREFLECT_KEEP_SCREENSHOTS"):
        keep = Path(os.environ["SCIREFLECT_KEEP_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        for png in (index_png, question_png):
            shutil.copy(png, keep / png.name)


@pytest.mark.timeout(180)
def test_a_question_with_a_figure_shows_it_beside_the_question(browser, tmp_path):
    """A run of the shipped figure sample (mock endpoint): the page shows the figure, loaded from the
    question file's directory through the viewer, beside the question text, under the same CSP."""
    import asyncio
    import threading

    from scireflect.run.config import load_settings
    from scireflect.rundata.questions import load_questions
    from scireflect.run.runner import annotate
    from scireflect.testing.mock_openai import MockOpenAI

    sample = Path(__file__).resolve().parents[1] / "data" / "figures"
    shutil.copytree(sample, tmp_path / "figures", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    questions = load_questions(tmp_path / "figures" / "questions.jsonl", limit=2)
    with MockOpenAI(answers={"cart": "2.5"}, require_images=True) as mock:
        settings = load_settings(base_url=[mock.base_url], model=mock.model, ocr=False)
        # Playwright's sync API holds an event loop in this thread: annotate in another one.
        worker = threading.Thread(target=lambda: asyncio.run(annotate(questions, tmp_path / "run", settings)))
        worker.start()
        worker.join(120)
    assert (tmp_path / "run" / "traces.jsonl").is_file()
    qid = questions.questions[0]["id"]
    server = serve(tmp_path / "run", 0)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(server.url + f"q/{qid}")
        page.wait_for_selector("img.figure")
        page.wait_for_function("document.querySelector('img.figure').complete && document.querySelector('img.figure').naturalWidth > 0",
                               timeout=10_000)
        assert page.evaluate("document.querySelector('img.figure').naturalWidth") == 500  # the PNG's own width
        text_box = page.locator(".qtext").bounding_box()
        figure_box = page.locator("img.figure").bounding_box()
        assert figure_box["x"] > text_box["x"] + text_box["width"] - 1 and figure_box["y"] < text_box["y"] + 200  # beside it
        assert "Position of a cart against time." in page.locator(".figures").inner_text()
        assert errors == [] and all(url.startswith(server.url) for url in requests)
        assert any(url.endswith(f"/figure/{qid}/0") for url in requests)
        page.screenshot(path=str(tmp_path / "figure.png"))
    finally:
        page.close()
        server.close()
    assert png_size(tmp_path / "figure.png") == (WIDTH, HEIGHT)
    if os.environ.get("SCIREFLECT_KEEP_SCREENSHOTS"):
        shutil.copy(tmp_path / "figure.png", Path(os.environ["SCIREFLECT_KEEP_SCREENSHOTS"]) / "question-figure.png")


@pytest.mark.timeout(180)
def test_a_large_run_opens_one_page_and_pages_filters_and_sorts_on_the_server(browser, tmp_path):
    """20,000 generated questions: the table holds one page of 200 rows, and paging, filtering and
    sorting ask the server for the rows (the page never holds the whole run)."""
    from scireflect.testing.large_run import write_large_run

    run_dir = write_large_run(tmp_path / "run", 20_000, trace_bytes=600)
    rejected = sum(1 for line in (run_dir / "traces.jsonl").open() if '"status": "rejected"' in line)
    server = serve(run_dir, 0, poll_ms=60_000)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    rows = page.locator("#questions tbody tr")
    try:
        page.goto(server.url)
        page.wait_for_selector("#questions tbody tr")
        assert rows.count() == 200 and rows.first.get_attribute("data-id") == "q-000000"
        assert page.locator("#count").inner_text() == "20000 of 20000 questions · showing 1–200"
        assert page.locator("#page").inner_text() == "page 1 of 100" and page.locator("#prev").is_disabled()

        page.click("#next")
        page.wait_for_selector('#questions tr[data-id="q-000200"]')
        assert rows.count() == 200 and "page=2" in page.url

        # A filter goes to the server and starts again at the first page.
        page.select_option("#f-status", "rejected")
        sync_api.expect(page.locator("#count")).to_have_text(f"{rejected} of 20000 questions · showing 1–200")
        assert rows.count() == 200 and page.locator("#page").inner_text() == "page 1 of " + str(-(-rejected // 200))
        assert all(t == "rejected" for t in page.locator("#questions tbody .badge").all_inner_texts())

        # Sorting by tokens, highest first, sorts all the matching rows, not only the page shown.
        page.click('#questions th[data-sort="tokens"]')
        page.click('#questions th[data-sort="tokens"]')
        top = max((r for r in server.index.rows if r["status"] == "rejected"), key=lambda r: r["tokens"])
        page.wait_for_selector(f'#questions tbody tr:first-child[data-id="{top["id"]}"]')
        assert "page=" not in page.url

        # An id search on the server, and a question of a later page opens from its line in the file.
        page.select_option("#f-status", "")
        page.fill("#f-id", "q-01999")
        sync_api.expect(page.locator("#count")).to_have_text("10 of 20000 questions")
        assert rows.count() == 10
        page.locator('#questions tr[data-id="q-019999"] a').click()
        page.wait_for_selector("article.attempt")
        assert errors == []
    finally:
        page.close()
        server.close()


@pytest.mark.timeout(180)
def test_review_by_keyboard_keeps_labels_across_a_restart_and_drops_a_changed_traces_label(browser, tmp_path):
    """Issue 26: label five accepted traces from the keyboard (v, x + reason + Enter, s), kill the server
    (``scireflect view`` in its own process, SIGKILL) half-way and open a new one: the labels are kept and
    shown; a trace changed after its label no longer counts."""
    from scireflect.rundata.labels import precision, read_labels
    from scireflect.rundata.store import load_traces
    from scireflect.testing.large_run import write_large_run

    run_dir = write_large_run(tmp_path / "run", 60, trace_bytes=500)
    errors: list[str] = []

    def open_review(url, pos):
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + f"review?pos={pos}")
        page.wait_for_selector("#review-bar")
        return page

    def qid(page):
        return page.evaluate("document.body.dataset.qid")

    import re
    import signal
    import subprocess
    import sys

    seen: list[str] = []
    # The first half against the real command in its own process, killed (SIGKILL) half-way.
    proc = subprocess.Popen([sys.executable, "-m", "scireflect.cli", "view", str(run_dir), "--no-browser", "--port", "0",
                             "--reviewer", "ana", "--seed", "7"], stdout=subprocess.PIPE, text=True, start_new_session=True)
    page = None
    try:
        url = next(m.group(0) for line in proc.stdout if (m := re.search(r"http://127\.0\.0\.1:\d+/", line)))
        page = open_review(url, 0)
        seen.append(qid(page))
        page.keyboard.press("v")
        page.wait_for_url("**/review?pos=1")
        seen.append(qid(page))
        page.keyboard.press("x")
        assert page.locator("#review-reasons").is_visible()
        page.keyboard.press("2")  # wrong answer
        page.keyboard.press("Enter")
        page.wait_for_url("**/review?pos=2")
        seen.append(qid(page))
        page.keyboard.press("s")
        page.wait_for_url("**/review?pos=3")
    finally:
        if page is not None:
            page.close()
        os.killpg(proc.pid, signal.SIGKILL)  # the server is killed half-way (and never left behind)
        proc.wait(10)

    server = serve(run_dir, 0, reviewer="ana", review_seed=7)
    page = open_review(server.url, 3)
    try:
        seen.append(qid(page))
        page.keyboard.press("v")
        page.wait_for_url("**/review?pos=4")
        seen.append(qid(page))
        page.keyboard.press("x")
        page.keyboard.press("1")
        page.fill("#review-note", "adds 3 and 4 to get 8")
        page.keyboard.press("Enter")
        page.wait_for_url("**/review?pos=5")
        page.keyboard.press("ArrowLeft")
        page.wait_for_url("**/review?pos=4")
        assert "invalid" in page.locator("#review-label").inner_text() and "wrong_reasoning" in page.locator("#review-label").inner_text()
        page.goto(server.url + "review?pos=0")  # labelled before the restart: kept
        assert "valid" in page.locator("#review-label").inner_text() and "by ana" in page.locator("#review-label").inner_text()
        assert errors == []
    finally:
        page.close()
        server.close()

    labels, problems = read_labels(run_dir)
    assert problems == [] and [label["id"] for label in labels] == seen
    assert [(label["label"], label["reason"]) for label in labels] == [
        ("valid", None), ("invalid", "wrong_answer"), ("skip", None), ("valid", None), ("invalid", "wrong_reasoning")]
    assert labels[-1]["note"] == "adds 3 and 4 to get 8"
    records = load_traces(run_dir)
    assert precision(records, labels)["overall"].labelled == 4
    # Re-annotating the first trace changes it: its label no longer counts.
    lines = (run_dir / "traces.jsonl").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line)["id"] == seen[0])
    changed = json.loads(lines[at])
    changed["steps"][0]["response"] += " (revised)"
    lines[at] = json.dumps(changed)
    (run_dir / "traces.jsonl").write_text("\n".join(lines) + "\n")
    result = precision(load_traces(run_dir), labels)
    assert result["overall"].labelled == 3 and result["stale"] == 1


SNIPPETS = [  # written by the embedded 1.5B in real runs
    r"\(h = 6.626 \times 10^{-34} \, \text{J} \cdot \text{s}\)",
    r"\(\lambda = 300 \mathrm{~nm}\)",
    r"\(E = \frac{6.626 \times 10^{-34} \times 3.00 \times 10^8}{300 \times 10^{-9}} = 6.63 \times 10^{-19} \text{ J}\)",
    r"\(\text{Gum per person} = \frac{109}{3} = 36.3333 \text{ pieces}\)",
    r"\(15 \, \text{hits/game} \times 5 \, \text{games} = 75 \, \text{hits}\)",
]


@pytest.mark.timeout(120)
def test_model_math_renders_as_katex_alone_renders_it_and_broken_math_stays_raw(browser, tmp_path):
    """Issue 26, item 4: units and fractions were pulled off the line because KaTeX writes \\text{} as
    <span class="mord text"> and the viewer styled every class named "text" (padding, a border). Each
    snippet must render in an attempt exactly as KaTeX renders it in a plain element of the same page
    (same width and height to half a pixel), and math KaTeX cannot read is shown as written."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    broken = r"\(\frac{1}{\)"
    response = "\n".join(f"{n}. {s}" for n, s in enumerate(SNIPPETS, start=1)) + f"\n6. {broken} is left as written."
    record = {"id": "m1", "subject": "physics", "status": "accepted", "accepted_stage": "cot",
              "question": {"id": "m1", "question": "Energy of a 300 nm photon?", "answer": "6.63"},
              "steps": [{"kind": "solution", "stage": "cot", "attempt": 1, "response": response,
                         "verdict": {"ok": True, "reason": "equal"}}]}
    (run_dir / "traces.jsonl").write_text(json.dumps(record) + "\n")
    server = serve(run_dir, 0)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        page.goto(server.url + "q/m1")
        page.wait_for_selector("#attempt-1 > .trace-text .katex")
        sizes = page.evaluate("""(snippets) => {
            const text = document.querySelector('#attempt-1 > .trace-text');
            const shown = Array.from(text.querySelectorAll('.katex')).map(e => e.getBoundingClientRect());
            const ref = document.createElement('div');
            ref.style.fontSize = getComputedStyle(text).fontSize;
            document.querySelector('#attempt-1').appendChild(ref);
            const alone = snippets.map(s => {
                const span = document.createElement('span');
                ref.appendChild(span);
                katex.render(s.slice(2, -2), span, {throwOnError: false});
                return span.querySelector('.katex').getBoundingClientRect();
            });
            return {shown: shown.map(r => [r.width, r.height]), alone: alone.map(r => [r.width, r.height])};
        }""", SNIPPETS)
        assert len(sizes["shown"]) == len(SNIPPETS)
        for snippet, shown, alone in zip(SNIPPETS, sizes["shown"], sizes["alone"], strict=True):
            assert shown == pytest.approx(alone, abs=0.5), snippet
        assert broken in page.locator("#attempt-1 > .trace-text").inner_text()
    finally:
        page.close()
        server.close()
