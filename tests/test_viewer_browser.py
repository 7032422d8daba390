"""The viewer in a real headless Chromium (Debian's chromium, driven by Playwright for Python): the
site opens from file:// with no network request, the leaderboard sorts, filters and keyboard
navigation work, items show their grading, math renders with a raw toggle, and the run-vs-run,
rescore, frontier and cutoff pages show what they should. `.ci/run` installs chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[test]')"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

import test_viewer as demo  # noqa: E402  (after the skips: the demo runs need nothing from the browser)

from evalkit.report.viewer.serve import start_server  # noqa: E402
from evalkit.report.viewer.site import write_site  # noqa: E402

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("viewer-browser")
    demo.make_demo_runs(root)
    return write_site([root / "runs"], root / "site").out


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[object]:
    # After the site: the runner's asyncio.run cannot start inside Playwright's running loop.
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


class Page:
    """A page of the site with every request and script error recorded."""

    def __init__(self, browser: object, base: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
        self.base = base
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, route: str = "/") -> object:
        self.page.goto(f"{self.base}#{route}")
        return self.wait()

    def wait(self) -> object:
        self.page.wait_for_selector("html[data-ready]", timeout=15_000)
        return self.page

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def page(browser: object, site: Path) -> Iterator[Page]:
    p = Page(browser, (site / "index.html").as_uri())
    yield p
    assert not p.errors, p.errors
    outside = [u for u in p.requests if not u.startswith("file://")]
    assert not outside, f"requests outside file://: {outside}"
    p.close()


def _column(pg: object, table: str, n: int) -> list[str]:
    return pg.eval_on_selector_all(  # type: ignore[attr-defined]
        f"#{table} tbody tr td:nth-child({n})", "els => els.map(e => e.innerText.trim())"
    )


def _scores(pg: object) -> list[float]:
    vals = pg.eval_on_selector_all(  # type: ignore[attr-defined]
        "#leaderboard td.score .val", "els => els.map(e => e.innerText)"
    )
    return [float(v) for v in vals]


def test_leaderboard_sorts_and_leads_to_an_item(page: Page) -> None:
    pg = page.open("/")
    assert len(_column(pg, "leaderboard", 1)) == 4
    pg.click("#leaderboard th[data-key=score]")
    scores = _scores(pg)
    assert scores == sorted(scores, reverse=True) and scores[0] == 50.0
    pg.click("#leaderboard th[data-key=score]")
    scores = _scores(pg)
    assert scores == sorted(scores)
    assert pg.get_attribute("#leaderboard th[data-key=score]", "aria-sort") == "ascending"
    # The lowest score is run-b's basic_facts: open it, filter the wrong answers, open one by keyboard.
    pg.click("#leaderboard tbody tr:first-child td.model a")
    page.wait()
    assert "basic_facts" in pg.inner_text("h1") and "Apache-2.0" in pg.inner_text(".licence")
    assert len(pg.query_selector_all("#items tbody tr[data-i]")) == 20
    pg.click("button.chip[data-flag=wrong]")
    page.wait()
    verdicts = _column(pg, "items", 3)
    assert len(verdicts) == 14 and all(v.startswith(("wrong", "no answer")) for v in verdicts)
    assert "14 of 20 shown" in pg.inner_text("#status")
    pg.keyboard.press("j")
    pg.keyboard.press("j")
    pg.keyboard.press("Enter")
    page.wait()
    pg.wait_for_selector("#detail .item-head")
    detail = pg.inner_text("#detail")
    third = _column(pg, "items", 2)[2].split()[0]
    assert third in detail
    for label in ("Gold", "Extracted", "Grader", "Finish", "QUESTION", "COMPLETION"):
        assert label in detail
    assert "answer_is" in detail or "none" in detail  # the extraction method
    assert "lenient" in detail  # per-scorer grades (run-b has two scorers)


def test_category_filter_search_and_censoring(page: Page) -> None:
    pg = page.open("/task/run-b/basic_facts")
    pg.select_option("select[data-facet='0']", "science")
    page.wait()
    facets = _column(pg, "items", 2)
    assert facets and all("science" in f for f in facets)
    page.open("/task/run-b/basic_facts")
    pg.fill("#search", "red planet")
    pg.wait_for_function("document.querySelectorAll('#items tbody tr[data-i]').length === 1")
    assert "Red Planet" in pg.inner_text("#items tbody")
    page.open("/task/run-b/basic_facts?f=censored")
    assert len(pg.query_selector_all("#items tbody tr[data-i]")) == 1
    pg.click("#items tbody tr[data-i]")
    page.wait()
    pg.wait_for_selector("#detail .item-head")
    assert "censored" in pg.inner_text("#detail")
    page.open("/task/run-b/basic_facts?f=judged&item=0")
    pg.wait_for_selector("#detail .item-head")
    assert "JUDGE" in pg.inner_text("#detail") and "judge-model" in pg.inner_text("#detail")


def test_math_is_rendered_with_raw_one_click_away(page: Page) -> None:
    pg = page.open("/task/run-a/mini_math?item=0")
    pg.wait_for_selector("#detail .item-head")
    assert pg.query_selector("#detail .tex.question .katex") is not None
    assert pg.query_selector("#detail .tex.completion .katex") is not None
    pg.click("#math-toggle")
    page.wait()
    pg.wait_for_selector("#detail .item-head")
    assert pg.query_selector("#detail .katex") is None
    assert r"\frac{1}{2}" in pg.inner_text("#detail .tex.question")
    pg.click("#math-toggle")  # back to rendered for the other tests (the choice is remembered)
    page.wait()


def test_few_shot_prompt_shows_its_shared_prefix_folded(page: Page) -> None:
    pg = page.open("/task/run-a/mini_math?item=1")
    pg.wait_for_selector("#detail .item-head")
    pg.click("#detail details.prompt > summary")
    assert "matches the request key" in pg.inner_text("#detail details.prompt")
    shared = pg.query_selector("#detail details.shared")
    assert shared is not None and "shared prefix" in shared.inner_text()
    assert "Worked example." in pg.eval_on_selector("#detail details.shared", "e => e.textContent")


def test_post_cutoff_filter(page: Page) -> None:
    pg = page.open("/task/run-a/mini_math?f=post_cutoff")
    ids = [x.split()[0] for x in _column(pg, "items", 2)]
    assert ids == ["mm-3", "mm-4", "mm-6"]


def test_run_vs_run_puts_discordant_items_first(page: Page) -> None:
    pg = page.open("/compare?a=run-a&b=run-b&task=basic_facts")
    pg.wait_for_selector("#pairs")
    kinds = _column(pg, "pairs", 2)
    first_concordant = next(i for i, k in enumerate(kinds) if k.startswith("both"))
    assert first_concordant > 0 and all(k.startswith("only") for k in kinds[:first_concordant])
    assert all(k.startswith(("both", "an error")) for k in kinds[first_concordant:])
    pg.click("#pairs tbody tr:first-child")
    pg.wait_for_selector("#pair-detail .side-by-side")
    assert pg.inner_text("#pair-detail").count("COMPLETION") == 2


def test_rescore_diff(page: Page) -> None:
    pg = page.open("/rescore/run-a")
    rows = pg.query_selector_all("#rescore tbody tr")
    assert len(rows) == 20
    assert "graded by old code" in pg.inner_text("#rescore tbody tr:first-child")
    assert "records.pre-rescore-" in pg.inner_text(".lede")


def test_frontier_links_own_runs_and_cutoff_view(page: Page) -> None:
    pg = page.open("/frontier")
    assert pg.query_selector(".chart svg") is not None
    link = pg.query_selector("a.run-link")
    assert link is not None
    link.click()
    page.wait()
    assert pg.query_selector("#items") is not None
    pg = page.open("/cutoff")
    text = pg.inner_text("#cutoff")
    assert "mini_math" in text and "2024-11-01" in text and "+33.3" in text


def test_served_over_http(browser: object, site: Path) -> None:
    server, url = start_server(site)
    try:
        p = Page(browser, url)
        pg = p.open("/task/run-a/basic_facts?item=0")
        pg.wait_for_selector("#detail .item-head")
        assert "bf-01" in pg.inner_text("#detail")
        assert all(u.startswith("http://127.0.0.1") for u in p.requests), p.requests
        assert not p.errors
        p.close()
    finally:
        server.shutdown()
        server.server_close()
