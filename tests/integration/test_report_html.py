"""The HTML report of real runs (tests/report_runs.py: completed, rolled back, rollback failed,
monitor fired) and of a blocked run with hostile names, parsed with the stdlib's html.parser and
laid out in Debian's headless Chromium (through Selenium), which saves a PNG of each page.

What it tries to break: a step name missing from the page, a section missing, the timeline without
one bar per phase, a monitor chart without its threshold or its firing mark, the canary secret,
anything fetched from the network, a `<script>` in a name that becomes a tag, NaN/None/huge values
reaching the SVG, a page wider than the window, console errors.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from tests import report_runs
from tests.helpers import run_json, write_runbook

from tminus.ledger import open_reader
from tminus.reports.report_monitor import MonitorReport, Point, RuleChart, StageReport
from tminus.reports.run_report import RunReport, build_report

# one worker runs the whole file (`--dist loadgroup`): the runs and the browser are made once
pytestmark = pytest.mark.xdist_group("report_html")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SECTIONS = ("summary", "timeline", "steps", "approvals", "decision", "rollback", "monitor", "deadlines", "chain",
            "notes")
HOSTILE_NAME = '<script>alert("x")</script> \'quoted\' & "double"'
LONG_NAME = "a very long check name " * 20
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}

HOSTILE = """
name: hostile-<script>
secrets: [REPORT_CANARY]
gates:
  - name: </svg><script>alert(1)</script>
    checks:
      - name: '{hostile}'
        run: >-
          echo "token=$REPORT_CANARY"; head -c 12000 /dev/zero | tr "\\\\0" x; echo;
          echo "</pre><script>alert(2)</script>"
      - name: '{long}'
        run: "exit 4"
        expect:
          - exit_code == 0
phases:
  - name: never <b>runs</b>
    budget: 1m
    steps:
      - name: unreachable
        run: "true"
""".replace("{hostile}", HOSTILE_NAME.replace("'", "''")).replace("{long}", LONG_NAME)


# --- the page as the parser sees it ----------------------------------------------------------------

@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parents: list[Element]
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def inside(self, id: str) -> bool:
        return any(p.attrs.get("id") == id for p in self.parents)


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e = Element(tag, {k: v or "" for k, v in attrs}, list(self.stack))
        self.elements.append(e)
        if tag not in VOID:
            self.stack.append(e)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, list(self.stack)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1].tag == tag, f"</{tag}> closes {self.stack[-1].tag if self.stack else None}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self.stack:
            self.stack[-1].text.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())

    def find(self, tag: str, cls: str | None = None, inside: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)
                and (inside is None or e.inside(inside))]

    def by_id(self, id: str) -> Element | None:
        return next((e for e in self.elements if e.attrs.get("id") == id), None)


# --- the runs -----------------------------------------------------------------------------------------

def _hostile(folder: Path) -> report_runs.ReportRun:
    folder.mkdir(parents=True, exist_ok=True)
    write_runbook(folder, HOSTILE)
    code, result = run_json("run", "runbook.yaml", "--yes", cwd=folder, env=report_runs.ENV)
    return report_runs.ReportRun(folder, str(result["run_id"]), str(result["status"]), code)


def _ponr(folder: Path) -> str | None:
    """The point of no return the plan names (reports never plan: the caller hands it over)."""
    _code, plan = run_json("plan", "runbook.yaml", cwd=folder)
    return (plan.get("point_of_no_return") or {}).get("key")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunReport]:
    base = tmp_path_factory.mktemp("report-html")
    makers = {**report_runs.SCENARIOS, "blocked_hostile": _hostile}
    with ThreadPoolExecutor(len(makers)) as pool:
        runs = dict(zip(makers, pool.map(lambda kv: kv[1](base / kv[0]), makers.items()), strict=True))
    ponr = _ponr(runs["completed"].folder)
    assert ponr, "the demo runbook has a point of no return"
    out = {}
    for name, run in runs.items():
        expected = report_runs.EXPECTED.get(name, ("blocked", run.exit_code))
        assert (run.status, run.exit_code) == expected, name
        with open_reader(run.ledger_url) as reader:
            out[name] = build_report(reader, run.run_id, point_of_no_return=ponr)
    return out


@pytest.fixture(scope="module")
def pages(reports: dict[str, RunReport]) -> dict[str, str]:
    from tminus.reports.formats import render

    return {name: render(r, "html") for name, r in reports.items()}


ALL = [*report_runs.SCENARIOS, "blocked_hostile"]


# --- structure ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ALL)
def test_every_step_and_section_is_on_the_page(scenario: str, reports: dict[str, RunReport],
                                               pages: dict[str, str]) -> None:
    report, page = reports[scenario], Page(pages[scenario])
    assert report.steps(), "the run recorded steps"
    for step in report.steps():
        names = [e for e in page.find("h4", "step-name") if "".join(e.text) == (step.name or step.key)]
        assert names, f"step {step.name!r} is not on the page as text"
    for section in SECTIONS:
        assert page.by_id(section) is not None, f"section #{section} missing"
        assert page.find("h2", inside=section) or page.find("h1", inside=section), f"#{section} has no heading"
    assert report_runs.CANARY not in pages[scenario]
    assert report.run_id in page.text and report.content_hash in page.text and report.summary in page.text


@pytest.mark.parametrize("scenario", ALL)
def test_the_timeline_has_one_bar_per_phase_that_ran(scenario: str, reports: dict[str, RunReport],
                                                     pages: dict[str, str]) -> None:
    report, page = reports[scenario], Page(pages[scenario])
    svg = page.by_id("chart-timeline")
    assert svg is not None and svg.tag == "svg"
    bars = [e for e in page.find("rect", "actual", inside="chart-timeline") if "section-bar" in e.classes]
    ran = [s for s in report.sections if s.start is not None]
    assert sorted(e.attrs["data-section"] for e in bars) == sorted(s.id for s in ran)
    phases = [s for s in report.sections if s.kind == "phase"]
    for s in phases:
        assert sum(1 for e in bars if e.attrs["data-section"] == s.id) == 1, s.id
    step_bars = [e for e in page.find("rect", "step-bar", inside="chart-timeline")]
    assert len(step_bars) == sum(1 for st in report.steps() if st.start is not None)
    assert page.find("line", "t0", inside="chart-timeline")
    planned = page.find("rect", "planned", inside="chart-timeline")
    assert len(planned) >= sum(1 for s in phases if s.budget), "each phase's budget is a planned band"
    if scenario == "blocked_hostile":
        assert not phases and "No phase ran" in page.text
    gates = next(e for e in bars if e.attrs["data-section"] == "gates")
    t0 = float(page.find("line", "t0", inside="chart-timeline")[0].attrs["x1"])
    assert not phases or float(gates.attrs["x"]) < t0, "the gates run before T+0"


def test_the_rollback_is_shaded_and_its_undo_listed(pages: dict[str, str]) -> None:
    for scenario in ("rolled_back", "rollback_failed", "monitor_fired"):
        page = Page(pages[scenario])
        assert page.find("rect", "rollback-band", inside="chart-timeline"), scenario
    assert not Page(pages["completed"]).find("rect", "rollback-band", inside="chart-timeline")
    text = Page(pages["rolled_back"]).text
    assert "Undone: undeploy; forget the release." in text
    failed = Page(pages["rollback_failed"]).text
    assert "Undone: nothing." in failed and "Not undone: undeploy (failed); forget the release (not run)." in failed
    assert "cannot undeploy" in failed, "the failed undo's stderr is its evidence"


def test_the_point_of_no_return_is_marked(reports: dict[str, RunReport], pages: dict[str, str]) -> None:
    page = Page(pages["completed"])
    assert page.find("line", "ponr", inside="chart-timeline")
    assert [e for e in page.find("span", "b-ponr")], "the step's card says it is the point of no return"
    blocked = Page(pages["blocked_hostile"])
    assert not blocked.find("line", "ponr", inside="chart-timeline") and "not reached" in blocked.text


def test_the_monitor_chart_shows_threshold_samples_and_where_it_fired(reports: dict[str, RunReport],
                                                                      pages: dict[str, str]) -> None:
    monitor = reports["monitor_fired"].monitor
    assert monitor is not None and monitor.rules[0].fired
    page = Page(pages["monitor_fired"])
    chart = page.by_id("chart-rule-0")
    assert chart is not None and chart.tag == "svg" and chart.inside("monitor")
    thresholds = page.find("line", "threshold", inside="chart-rule-0")
    assert len(thresholds) == 1
    assert any(">= 0.9" in "".join(e.text) for e in page.find("text", "threshold-label", inside="chart-rule-0"))
    samples = page.find("circle", "sample", inside="chart-rule-0")
    assert len(samples) == len(monitor.rules[0].points) >= 2
    # every sample reads 0.95, above the threshold: drawn above its line (SVG y grows downward)
    assert all(float(c.attrs["cy"]) < float(thresholds[0].attrs["y1"]) for c in samples)
    assert page.find("path", "firing-mark", inside="chart-rule-0")
    assert page.find("line", "firing", inside="chart-rule-0")
    assert page.find("rect", "stage-window", inside="chart-rule-0")
    for other in ("completed", "rolled_back"):
        assert Page(pages[other]).by_id("chart-rule-0") is None


def test_approvals_decision_and_chain(reports: dict[str, RunReport], pages: dict[str, str]) -> None:
    text = Page(pages["completed"]).text
    assert "Check the dashboard shows v2." in text and "approved in advance with --yes" in text
    assert "--yes" in text and "tester" in text
    assert "every verify check passed" in text
    assert "Every event of this run is in the ledger's hash chain, unaltered." in text


@pytest.mark.parametrize("scenario", ALL)
def test_the_page_is_self_contained_and_escapes_what_it_quotes(scenario: str, pages: dict[str, str]) -> None:
    html = pages[scenario]
    page = Page(html)
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    for e in page.elements:
        for k, v in e.attrs.items():
            if k in ("src", "href", "xlink:href", "action", "srcset"):
                assert not re.match(r"\s*(https?:)?//", v), f"{e.tag} {k}={v}"
    urls = re.findall(r"url\(\s*['\"]?([^)'\"]*)", html)
    assert urls and all(u.startswith("#") for u in urls), urls  # only the page's own patterns
    assert "@import" not in html and "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()
    ids = [e.attrs["id"] for e in page.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids)), "ids are unique (the charts' patterns are found by id)"


def test_hostile_names_and_output_are_text(reports: dict[str, RunReport], pages: dict[str, str]) -> None:
    html, page = pages["blocked_hostile"], Page(pages["blocked_hostile"])
    assert HOSTILE_NAME in page.text, "the name is shown as the text it is"
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html or "&lt;script&gt;alert(&quot;x&quot;)" in html
    assert " ".join(LONG_NAME.split()) in page.text
    assert "</pre><script>alert(2)</script>" in page.text, "output is shown, escaped, in its <pre>"
    outputs = page.find("pre", "output")
    assert outputs and all(len("".join(e.text)) <= 4100 for e in outputs), "output is cut"
    report = reports["blocked_hostile"]
    assert report.steps()[0].truncated


# --- hostile values no run records ---------------------------------------------------------------

def _mangled(report: RunReport) -> Iterator[tuple[str, RunReport]]:
    r = copy.deepcopy(report)
    nan, inf = math.nan, math.inf
    for s in r.sections:
        s.start, s.end, s.planned_start, s.budget, s.over_budget = nan, inf, -inf, nan, nan
        for st in s.steps:
            st.start, st.end, st.duration = None, nan, inf
            st.name = "x" * 5000
            st.output = {"stdout": "y" * 50000}
            for x in st.expectations:
                x.actual, x.expected = {"n": nan}, None
    r.duration, r.t0, r.exit_code, r.host, r.release = nan, None, None, None, None
    points = [Point(nan, 1.0, "a", "window"), Point(0.5, nan, "b", "window"), Point(1.0, None, "error", "window")]
    r.monitor = MonitorReport(
        stages=[StageReport("baseline", nan, None, None, 0, None, None),
                StageReport("window", 0.0, inf, 0.0, 3, "rb", None)],
        rules=[RuleChart("r<script>", None, None, "", nan, "> NaN", points,
                         [{"t": None, "to": "firing"}, {"t": 1.0, "to": "firing"}]),
               RuleChart("empty", None, None, "", None, None)],
        actions=[{"t": None}], outcome=None, reason=None)
    yield "not-a-number", r
    z = copy.deepcopy(report)
    for s in z.sections:
        s.start = s.end = s.planned_start = 0.0
        s.budget = 0.0
        for st in s.steps:
            st.start = st.end = 0.0
    flat = RuleChart("flat", "p", "rollback", "", 0.0, "< 0", [Point(0.0, 0.0, "0", "window")])
    z.monitor = MonitorReport([StageReport("window", 0.0, 0.0, 0.0, 1, None, None)], [flat], [], None, None)
    yield "zero-length", z
    e = copy.deepcopy(report)
    e.sections, e.approvals, e.monitor, e.rollback, e.decision, e.causes = [], [], None, None, None, []
    e.point_of_no_return = None
    e.status = "made-up <status>"
    yield "nothing-recorded", e


def _numeric_attrs_are_finite(page: Page) -> None:
    for e in page.elements:
        if not (e.inside("chart-timeline") or any(p.tag == "svg" for p in e.parents)):
            continue
        for k in ("x", "y", "width", "height", "x1", "x2", "y1", "y2", "cx", "cy", "r"):
            if k in e.attrs:
                v = float(e.attrs[k])
                assert math.isfinite(v) and (k not in ("width", "height", "r") or v >= 0), f"{e.tag} {k}={v}"
        for k in ("d", "points"):
            assert "nan" not in e.attrs.get(k, "").lower() and "inf" not in e.attrs.get(k, "").lower()


@pytest.mark.parametrize("base", ["monitor_fired", "rollback_failed"])
def test_nan_none_huge_and_empty_values_render(base: str, reports: dict[str, RunReport]) -> None:
    from tminus.reports.render_html import render_html

    for label, report in _mangled(reports[base]):
        html = render_html(report)
        page = Page(html)
        _numeric_attrs_are_finite(page)
        assert "<script" not in html.lower(), label
        assert all(len("".join(e.text)) <= 4000 for e in page.find("pre", "output")), "output is cut, whoever built it"
        for section in SECTIONS:
            assert page.by_id(section) is not None, (label, section)
        json.dumps(report.to_dict(), default=str)  # the mangled report is still a report


def test_an_overrun_and_a_step_still_running_are_marked(reports: dict[str, RunReport]) -> None:
    """None of the real runs overruns a budget (they take milliseconds): the budget is shrunk."""
    from tminus.reports.render_html import render_html

    r = _overrun(reports["completed"])
    page = Page(render_html(r))
    over = page.find("rect", "overrun", inside="chart-timeline")
    assert len(over) == 1 and "phase deploy: over budget by 45ms" in page.text  # its tooltip
    labels = ["".join(e.text) for e in page.find("text", "overrun-label", inside="chart-timeline")]
    assert labels == ["+45ms over"]
    deploy = next(e for e in page.find("rect", "section-bar", inside="chart-timeline")
                  if e.attrs["data-section"] == "phase:deploy")
    assert float(over[0].attrs["x"]) > float(deploy.attrs["x"]), "the overrun is the bar's part past the budget"
    assert "+45ms" in page.text, "the phases table says it too"
    running = [e for e in page.find("rect", "status-running", inside="chart-timeline")]
    assert running and float(running[0].attrs["width"]) > 2


def _overrun(report: RunReport) -> RunReport:
    r = copy.deepcopy(report)
    deploy = next(s for s in r.sections if s.id == "phase:deploy")
    assert deploy.start is not None and deploy.end is not None
    deploy.end = deploy.start + 0.095
    deploy.budget, deploy.actual, deploy.over_budget = 0.05, 0.095, 0.045
    last = r.steps()[-1]
    last.status, last.end, last.duration = "running", None, None
    # started with the deploy phase: its bar reaches the chart's end, wider than the 2px minimum
    # however fast the real run's steps were (a step started in the run's last millisecond was not)
    last.start = deploy.start
    return r


# --- in a real browser ------------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Debian's chromium and chromium-driver: missing {missing} (see .ci/run)")
        pytest.skip(f"headless Chromium not installed: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize("scenario", [*ALL, "overrun", "not-a-number"])
def test_chromium_lays_the_page_out(scenario: str, reports: dict[str, RunReport], pages: dict[str, str],
                                    browser: Any, tmp_path: Path) -> None:
    import base64

    from tminus.reports.render_html import render_html

    if scenario == "overrun":
        html = render_html(_overrun(reports["completed"]))
    elif scenario == "not-a-number":
        html = render_html(dict(_mangled(reports["monitor_fired"]))[scenario])
    else:
        html = pages[scenario]
    path = tmp_path / f"report-{scenario}.html"
    path.write_text(html, encoding="utf-8")
    browser.get_log("browser")  # what an earlier page logged is not this one's
    browser.get(path.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, severe
    width, window = browser.execute_script("return [document.body.scrollWidth, window.innerWidth]")
    assert width <= window, f"the page is {width}px wide in a {window}px window"
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart')).map(s => {"
        " const b = s.getBoundingClientRect(); return [s.id, b.width, b.height]; })")
    assert boxes and all(w > 100 and h > 50 for _, w, h in boxes), boxes
    assert any(i == "chart-timeline" for i, _, _ in boxes)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": window, "height": height, "scale": 1}})
    png = base64.b64decode(shot["data"])
    out = tmp_path / f"report-{scenario}.png"
    out.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, len(png)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(out, ARTIFACTS / out.name)
    shutil.copyfile(path, ARTIFACTS / path.name)
