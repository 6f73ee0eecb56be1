"""The static HTML report: tables, relative figure links, escaped configs, provenance, notes, determinism, one-line
errors for missing inputs, and (with Chromium) that the page loads offline without console errors or broken images."""
from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evaluation.report import html as report

CONFIG_SHA = "c0ffee0123456789abcdef"
GIT_SHA = "feedface9876543210fedcba"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (255, 0, 0)).save(path)
    return path


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A tiny report's inputs under ``tmp_path`` (the working directory); git_sha fixed for determinism."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(report.results, "git_sha", lambda: "abc123rev")
    write(tmp_path / "tables/one.md", "### First table\n\n| a | b |\n|---|---:|\n| x1 | 1.5 |\n\nCaption one.\n")
    write(tmp_path / "tables/two.md", "### Second table\n\n| a | b |\n|---|---:|\n| y2 | 2.25 |\n\nCaption two.\n")
    png(tmp_path / "reports/figures/tok/a.png")
    png(tmp_path / "reports/figures/gen/token_masks.png")
    write(tmp_path / "results/v1/config.yaml", "name: v1\nnote: <b>bold?</b> & more\n")
    write(tmp_path / "results/v1/eval/vqav2.json", json.dumps({
        "benchmark": "vqav2", "variant": "v1", "metrics": {"accuracy": 0.5}, "n": 7, "ci95": {"accuracy": [0.4, 0.6]},
        "checkpoint": "results/v1/stage2/model.pt", "config_sha": CONFIG_SHA, "git_sha": GIT_SHA}))
    write(tmp_path / "results/v1/eval/vqav2.samples.jsonl", "not json at all\n")
    write(tmp_path / "results/tok_only/config.yaml", "name: tok_only\n")
    write(tmp_path / "notes.md", "# Paper notes\n\n## C1. A kernel\n\nWe read `C` as a bandwidth.\n")
    return {"--tables": ["tables/one.md", "tables/two.md"],
            "--figures": ["reports/figures/tok/a.png", "reports/figures/gen/token_masks.png"],
            "--results": ["results"], "--variants": ["v1", "tok_only"], "--notes": ["notes.md"],
            "--title": ["Report <test>"], "--out": ["reports/index.html"]}


def argv(args: dict[str, list[str]]) -> list[str]:
    return [x for k, v in args.items() for x in (k, *v)]


def test_page_has_tables_figures_provenance_and_notes_and_is_deterministic(site: dict[str, list[str]]) -> None:
    assert report.main(argv(site)) == 0
    out = Path("reports/index.html")
    page = out.read_text(encoding="utf-8")
    assert page.count("<table>") == 3  # two Markdown tables and v1's provenance (tok_only has no results)
    assert re.search(r"<td>x1</td>\s*<td style=\"text-align:right\">1.5</td>", page)
    assert "<td>y2</td>" in page and "Caption two." in page
    assert "<title>Report &lt;test&gt;</title>" in page
    srcs = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page)
    assert srcs == [("figures/tok/a.png", "a"), ("figures/gen/token_masks.png", "token masks")]
    assert all((out.parent / src).is_file() for src, _ in srcs)
    assert "<figcaption>token masks</figcaption>" in page
    assert "<h3>tok</h3>" in page and "<h3>gen</h3>" in page
    assert "&lt;b&gt;bold?&lt;/b&gt; &amp; more" in page and "<b>bold?</b>" not in page
    assert f"<code>{CONFIG_SHA[:12]}</code>" in page and CONFIG_SHA not in page
    assert f"<code>{GIT_SHA[:12]}</code>" in page and "results/v1/stage2/model.pt" in page
    assert "name: tok_only" in page
    assert "<h1>Paper notes</h1>" in page and "<code>C</code>" in page
    assert "abc123rev" in page
    for anchor in ("tables", "figures", "provenance", "paper-differences"):
        assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page
    assert "<script" not in page and "http" not in page
    first = out.read_bytes()
    assert report.main(argv(site)) == 0
    assert out.read_bytes() == first


def test_marked_results_show_their_marks_in_tables_and_provenance_and_clean_ones_do_not(
        site: dict[str, list[str]]) -> None:
    from evaluation.report import mllm_table

    oracle = {"grader": {"name": "precomputed", "model": None, "file": "grades/oracle.json",
                         "judges_predictions": False}, "subset": [], "shortcuts": []}
    write(Path("results/v1/eval/mmvet.json"), json.dumps({
        "benchmark": "mmvet", "variant": "v1", "metrics": {"score": 100.0}, "n": 4, "ci95": {}, "checkpoint": None,
        "config_sha": CONFIG_SHA, "git_sha": GIT_SHA, "provenance": oracle}))
    record = json.loads(Path("results/v1/eval/vqav2.json").read_text())
    write(Path("results/v1/eval/vqav2.json"), json.dumps(
        {**record, "provenance": {"grader": None, "subset": [], "shortcuts": []}}))
    paper = Path(__file__).resolve().parents[3] / "evaluation/paper_numbers.yaml"
    assert mllm_table.main(["--results", "results", "--variants", "v1", "--benchmarks", "vqav2", "mmvet", "--paper",
                            str(paper), "--md", "tables/mllm.md", "--tex", "tables/mllm.tex"]) == 0
    site["--tables"] = [*site["--tables"], "tables/mllm.md"]
    assert report.main(argv(site)) == 0
    page = Path("reports/index.html").read_text(encoding="utf-8")
    assert re.search(r'<td>mmvet</td>\s*<td>score</td>\s*<td style="text-align:right">100.00°</td>', page)
    assert re.search(r'<td>vqav2</td>\s*<td>accuracy</td>\s*<td style="text-align:right">0.50</td>', page)
    why = "° precomputed grades (grades/oracle.json), not judged from these predictions"
    assert f"<li>° mmvet: {why[2:]}</li>" in page  # the table's legend
    assert re.search(rf'<td>mmvet</td><td class="num">4</td>.*<td class="marks">{re.escape(why)}</td>', page)
    assert re.search(r'<td>vqav2</td><td class="num">7</td>.*<td class="marks">—</td>', page)  # clean
    assert "ˢ</span> a subset of the benchmark" in page  # what each symbol means, once


def test_unknown_git_revision_reads_unknown(site: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report.results, "git_sha", lambda: None)
    assert report.main(argv(site)) == 0
    assert "Git revision: <code>unknown</code>" in Path("reports/index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("flag, missing", [("--tables", "tables/gone.md"), ("--figures", "reports/figures/x/gone.png"),
                                           ("--variants", "nowhere"), ("--notes", "gone.md")])
def test_a_missing_input_exits_2_with_one_line_naming_it(site: dict[str, list[str]], capsys: pytest.CaptureFixture,
                                                         flag: str, missing: str) -> None:
    site[flag] = [*site[flag], missing] if flag != "--notes" else [missing]
    assert report.main(argv(site)) == 2
    err = capsys.readouterr().err
    path = f"results/{missing}/config.yaml" if flag == "--variants" else missing
    assert err == f"error: {path}: file not found\n"
    assert not Path("reports/index.html").exists()


def test_a_malformed_result_file_exits_2_naming_it(site: dict[str, list[str]], capsys: pytest.CaptureFixture) -> None:
    write(Path("results/v1/eval/bad.json"), "{")
    assert report.main(argv(site)) == 2
    assert capsys.readouterr().err.startswith("error: results/v1/eval/bad.json: malformed JSON")


def browser_available() -> bool:
    """Whether the Chromium test runs; with SETOK_REQUIRE_BROWSER=1 a missing browser fails instead of skipping."""
    present = CHROMIUM.exists() and CHROMEDRIVER.exists()
    if os.environ.get("SETOK_REQUIRE_BROWSER") == "1" and not present:
        pytest.fail(f"SETOK_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt install chromium "
                    "chromium-driver)")
    return present


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """Headless Debian Chromium through chromedriver, offline (no background networking), console logs kept."""
    if not browser_available():
        pytest.skip(f"no {CHROMIUM} and {CHROMEDRIVER} (set SETOK_REQUIRE_BROWSER=1 to require them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def load(driver: Any, page: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Open ``page``: its SEVERE console entries and every image's natural width (-1 while still loading)."""
    driver.get(page.resolve().as_uri())
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return severe, driver.execute_script("return Array.from(document.images, i => i.complete ? i.naturalWidth : -1);")


def test_page_loads_in_headless_chromium_without_errors(site: dict[str, list[str]], tmp_path: Path) -> None:
    assert report.main(argv(site)) == 0
    broken = write(tmp_path / "broken.html", '<!DOCTYPE html><img src="missing.png" alt="missing">')
    with chromium(tmp_path / "chromium-profile") as driver:
        severe, widths = load(driver, tmp_path / "reports/index.html")
        assert severe == []
        assert widths == [8, 8] and len(widths) == len(site["--figures"])
        # Negative control: a broken image has naturalWidth 0 and logs a SEVERE entry, so both checks can fail.
        severe, widths = load(driver, broken)
        assert widths == [0] and severe


@pytest.mark.skipif(not os.environ.get("SETOK_REPORT"), reason="set SETOK_REPORT=reports/index.html after make smoke")
def test_built_report_loads_in_headless_chromium_with_every_figure(tmp_path: Path) -> None:
    """The report `make smoke` built (.ci/run runs this after it): no console error, every figure a real image."""
    page = Path(os.environ["SETOK_REPORT"])
    assert page.is_file(), f"{page}: no report (run make smoke first)"
    figures = len(re.findall(r"<img ", page.read_text(encoding="utf-8")))
    with chromium(tmp_path / "chromium-profile") as driver:
        severe, widths = load(driver, page)
    assert severe == []
    assert figures >= 6 and len(widths) == figures and min(widths) > 0
