"""`tminus import`: the five hand-written runbooks of /work/shared/runbooks-in-the-wild become runbooks
that validate, with per-seed counts derived by reading each seed; every guess is commented; the same
input gives the same bytes; careless and hostile input (empty, binary, 5 MB, template and shell
syntax in headings, unterminated fences, CRLF, BOM, YAML's special characters) is refused clearly or
imported inertly; and the skeleton cannot change anything before someone reviewed it."""

from __future__ import annotations

import json
import os
import random
import re
import resource
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from tests.helpers import tminus

from tminus.importer import convert
from tminus.importer.mapping import REVIEW_GATE, escape
from tminus.runbook.loader import load_runbook
from tminus.templating.templater import Templater

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("manual", "run", "http", "sql")


def _seeds_dir() -> Path | None:
    """The seeds sit in `shared/` beside the main checkout: ../shared from it, ../../shared from a
    worktree under /work/wt/NAME."""
    for up in (ROOT / ".." / "shared", ROOT / ".." / ".." / "shared"):
        found = up / "runbooks-in-the-wild"
        if found.is_dir():
            return found.resolve()
    return None


SEEDS = _seeds_dir()
# CI runs on a clone with ../shared beside it: there a missing seed folder is a failure, not a skip
needs_seeds = pytest.mark.skipif(SEEDS is None and not os.environ.get("CI"),
                                 reason="shared/runbooks-in-the-wild not found beside the repository")


def _seed(prefix: str) -> Path:
    assert SEEDS is not None
    return next(SEEDS.glob(f"{prefix}_*.txt"))


# Counted by reading each seed (see docs/import.md for the rules):
# gates: [checks per kind] in order (the review gate first); phases/after_go: steps per kind;
# rollback: steps per kind; decision: mode.
EXPECTED: dict[str, dict[str, Any]] = {
    # one line of text: 8 numbered readiness gates -> 1 gate of 8 manual checks; "Rollout Procedure" 6 numbered
    # items -> a phase; "Rollback Procedure" 3 items -> rollback; "Rollback Rehearsal Checklist" 5 -> a gate;
    # "Alert Thresholds" 4 -> checks after the go.
    "000": {"gates": [{"run": 1}, {"manual": 8}, {"manual": 5}], "phases": [{"manual": 6}],
            "after_go": [{"manual": 4}], "rollback": {"manual": 3}, "decision": "auto",
            "stages": [], "budgets": [], "flattened": True, "plain_text": False},
    # plain text: 7 "Scenario:" blocks of WHEN/THEN bullets; 5 requirements about gates/readiness/rehearsal
    # -> gates of 2 checks, the 2 scenarios under the rollback requirement -> 4 rollback steps.
    "001": {"gates": [{"run": 1}] + [{"manual": 2}] * 7, "phases": [], "after_go": [],
            "rollback": {"manual": 4}, "decision": "auto", "stages": [], "budgets": [],
            "flattened": False, "plain_text": True},
    # T-48h checklist (4 gates of 5, 4, 4, 4), T-2h tasks + the mail template (a gate of 7); 8 T+ phases before
    # the go/no-go, 4 after it; the rollback's own 5 bullets, 6 step blocks and 5 post-rollback items.
    "002": {"gates": [{"run": 1}, {"manual": 5}, {"manual": 4}, {"manual": 4}, {"manual": 4}, {"manual": 7}],
            "phases": [{"run": 1, "manual": 5, "http": 1}, {"run": 3, "sql": 1, "manual": 3},
                       {"run": 4, "manual": 4}, {"run": 5, "manual": 4}, {"run": 2, "sql": 4, "manual": 5},
                       {"run": 6, "manual": 3}, {"http": 10, "manual": 5}, {"run": 5, "manual": 5}],
            "after_go": [{"run": 1, "manual": 6, "http": 1}, {"run": 4, "manual": 1}, {"manual": 12},
                         {"manual": 8}],
            "rollback": {"manual": 10, "run": 5, "http": 1}, "decision": "manual",
            "stages": ["T-48h"] * 4 + ["T-2h"], "budgets": ["5m", "5m", "10m", "10m", "90m", "30m", "15m", "15m"],
            "flattened": False, "plain_text": False},
    # one heading; "1) Secrets Management" ... standing alone are headings; all bullets.
    "003": {"gates": [{"run": 1}, {"manual": 2}],
            "phases": [{"manual": 3}, {"manual": 2}, {"manual": 2}, {"manual": 4}, {"manual": 5}],
            "after_go": [{"manual": 4}], "rollback": {"manual": 3}, "decision": "auto", "stages": [],
            "budgets": [], "flattened": False, "plain_text": True},
    "004": {"gates": [{"run": 1}, {"manual": 10}, {"manual": 4}, {"manual": 4, "run": 2}, {"manual": 4}],
            "phases": [{"run": 1}, {"run": 2, "http": 1, "sql": 1}, {"run": 2}, {"run": 2}, {"http": 1, "run": 2}],
            "after_go": [], "rollback": {"run": 1, "manual": 5, "sql": 1}, "decision": "auto", "stages": [],
            "budgets": [], "flattened": False, "plain_text": False},
}


def _kinds(steps: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(next(k for k in KINDS if k in step) for step in steps))


def _import(tmp_path: Path, text: str | bytes, *args: str, name: str = "runbook.md") -> tuple[Any, Path]:
    src = tmp_path / name
    if isinstance(text, bytes):
        src.write_bytes(text)
    else:
        src.write_text(text, encoding="utf-8", newline="")
    out = tmp_path / "out.yaml"
    done = tminus("import", str(src), "-o", str(out), "--force", *args, cwd=tmp_path)
    return done, out


@needs_seeds
@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_each_seed_imports_to_a_runbook_that_validates_with_the_counts_read_from_it(
        tmp_path: Path, prefix: str) -> None:
    out = tmp_path / f"{prefix}.yaml"
    done = tminus("import", str(_seed(prefix)), "-o", str(out), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    checked = _cli("validate", str(out))  # the real command, in-process
    assert checked.exit_code == 0, checked.output + out.read_text()
    data = YAML(typ="safe").load(out.read_text(encoding="utf-8"))
    want = EXPECTED[prefix]
    assert [_kinds(g["checks"]) for g in data["gates"]] == want["gates"]
    assert [_kinds(p["steps"]) for p in data.get("phases", [])] == want["phases"]
    assert [_kinds(p["steps"]) for p in data.get("after_go", [])] == want["after_go"]
    assert _kinds(data.get("rollback", [])) == want["rollback"]
    assert data.get("decision", {}).get("mode", "auto") == want["decision"]
    assert [g["stage"] for g in data["gates"] if "stage" in g] == want["stages"]
    assert [p["budget"] for p in data.get("phases", []) if "budget" in p] == want["budgets"]
    assert data["gates"][0]["name"] == REVIEW_GATE
    # the summary says the same
    every = [*(c for g in want["gates"] for c in [g]), *want["phases"], *want["after_go"], want["rollback"]]
    totals: Counter[str] = Counter()
    for counts in every:
        totals.update(counts)
    assert summary["steps"] == {"total": sum(totals.values()), **dict(sorted(totals.items()))}
    assert (summary["gates"], summary["phases"], summary["after_go"]) == (
        len(want["gates"]), len(want["phases"]), len(want["after_go"]))
    assert (summary["flattened"], summary["plain_text"]) == (want["flattened"], want["plain_text"])
    assert summary["decision"] == want["decision"]


@needs_seeds
@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_every_guess_is_a_comment_naming_a_line_of_the_seed(prefix: str) -> None:
    seed = _seed(prefix)
    source = seed.read_text(encoding="utf-8").split("\n")
    imported = convert(seed.read_text(encoding="utf-8"), source=seed.name)
    comments = re.findall(r"# guessed from line (\d+): (.*)$", imported.text, re.M)
    assert len(comments) == imported.summary["guesses"] > 0
    assert all(1 <= int(n) <= len(source) for n, _ in comments)
    # every step but the review gate's check carries its guess
    lines = imported.text.split("\n")
    starts = [ln for ln in lines if re.match(r"^\s*- name: ", ln)]
    unguessed = [ln for ln in starts if "# guessed from line" not in ln]
    assert len(unguessed) == 2, unguessed  # the review gate and its check: written by the importer, not guessed
    # the line a curl check names has the curl on it, the one a psql query names its command
    for n, what in comments:
        if what.startswith("curl"):
            assert "curl" in source[int(n) - 1], (n, what)
        if what.startswith("psql"):
            assert re.search(r"psql|docker exec", source[int(n) - 1]), (n, what)


@needs_seeds
def test_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    seed = _seed("002")
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for out in (first, second):
        assert tminus("import", str(seed), "-o", str(out), cwd=tmp_path).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    assert convert(seed.read_text(encoding="utf-8"), source=seed.name).text == first.read_text(encoding="utf-8")


@needs_seeds
def test_crlf_and_a_bom_import_as_the_same_runbook() -> None:
    text = _seed("004").read_text(encoding="utf-8")
    careless = "\ufeff" + text.replace("\n", "\r\n")
    assert convert(careless, source="x.md").text == convert(text, source="x.md").text


def test_an_imported_skeleton_cannot_change_anything_before_its_review(tmp_path: Path) -> None:
    """The review gate fails: `tminus run` is blocked (exit 10) and the shell block never ran."""
    md = "# Ship it\n\n## Deploy\n\n```bash\ntouch ran.marker\n```\n"
    done, out = _import(tmp_path, md)
    assert done.returncode == 0, done.stderr
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    ran = tminus("run", str(out), "--ledger", ledger, "--no-input", cwd=tmp_path)
    assert ran.returncode == 10, ran.stdout + ran.stderr
    assert not (tmp_path / "ran.marker").exists()
    assert "review every step marked guessed" in ran.stdout + ran.stderr


HOSTILE = """\
# Release {{ evil }} $(rm -rf /)

## Deploy {% if true %}{{ env.HOME }}{% endif %} `$(rm -rf /)`

- [ ] check {{ secrets.DB }} and {# comment #} and $(rm -rf /) ; `rm -rf /`
- [ ] yes
- [ ] 1.10
- [ ] key: value # not a comment
- [ ] @at &anchor *alias !tag %percent 'single' "double" \\ back\tslash

```bash
echo "{{ vars.x }}" '{{ y }}' {{z}} # {% raw %}
```

```bash
curl -f "http://example.test/{{ evil }}"
```

```sql
SELECT '{{ evil }}' FROM t;
```

```bash
psql "$URL" -c "SELECT '{{ x }}'"
```
"""


def test_template_and_shell_syntax_in_the_markdown_stays_literal(tmp_path: Path) -> None:
    done, out = _import(tmp_path, HOSTILE)
    assert done.returncode == 0, done.stderr
    doc = load_runbook(out)  # validates: no undefined name, no unknown filter
    rb = doc.runbook
    templater = Templater(vars={}, environ={}, secrets=[])
    steps = rb.phases[0].steps
    prompts = [templater.render(s.manual.prompt) for s in steps if s.manual]
    assert prompts[0] == "check {{ secrets.DB }} and {# comment #} and $(rm -rf /) ; `rm -rf /`"
    assert prompts[1:4] == ["yes", "1.10", "key: value # not a comment"]
    assert prompts[4] == "@at &anchor *alias !tag %percent 'single' \"double\" \\ back slash"
    runs = [s for s in steps if s.run]
    # the shell escaper quotes the literal `{{` where it stands: the shell reads it back as `{{`
    rendered = templater.render(runs[0].run.command, language="shell")
    assert rendered.replace("'{{'", "{{").replace("'{%'", "{%") == 'echo "{{ vars.x }}" \'{{ y }}\' {{z}} # {% raw %}'
    # a templated curl or query is kept as a run step, never a live template in an http url or sql query
    assert not [s for s in steps if s.http or s.sql]
    assert len(runs) == 3
    sql_block = [s.manual for s in steps if s.manual and s.manual.instructions]
    assert templater.render(sql_block[0].instructions) == "SELECT '{{ evil }}' FROM t;"
    # the headings' text is in names only (never rendered), nowhere in a command
    assert rb.name == "release-evil-rm-rf"
    assert rb.phases[0].name.startswith("Deploy {% if true %}")
    assert not [s for s in runs if "rm -rf" in s.run.command]


def test_yaml_special_characters_round_trip_exactly() -> None:
    items = ["yes", "no", "null", "~", "1.10", "0x1F", "2026-12-05", "- dash", "? q", ": colon", "a: b", "a #b",
             "#hash", "'", '"', "`tick`", "|pipe", ">fold", "[flow", "{flow}", "%", "@", "!", "*a", "&a", "tab\tin",
             "trailing space ", "  leading", "ünïcødé ✅ ≥", "\\back"]
    md = "## Steps\n\n" + "".join(f"1. x{item}\n" for item in items)
    rb = load_runbook("x.yaml", text=convert(md, source="x.md").text).runbook
    prompts = [s.manual.prompt for s in rb.phases[0].steps if s.manual]
    # item text is read as Markdown: runs of white space are one space, as Markdown shows them
    assert prompts == [escape(" ".join(("x" + item).split()).removesuffix(":").rstrip()) for item in items]


def test_an_unterminated_fence_runs_to_the_end_as_one_block(tmp_path: Path) -> None:
    md = "## Deploy\n\n1. start\n\n```bash\n./deploy.sh\n## not a heading\n- [ ] not an item\n"
    done, out = _import(tmp_path, md)
    assert done.returncode == 0, done.stderr
    rb = load_runbook(out).runbook
    assert [s.name for s in rb.phases[0].steps] == ["start", "Deploy"]
    assert rb.phases[0].steps[1].run.command == "./deploy.sh\n## not a heading\n- [ ] not an item"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b" \r\n\t\n", "empty"),
    (b"\xef\xbb\xbf", "empty"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00garbage", "binary"),
])
def test_nothing_to_import_is_a_usage_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "runbook.md").write_bytes(content)
    out = tmp_path / "out.yaml"
    done = _cli("import", str(tmp_path / "runbook.md"), "-o", str(out))
    assert done.exit_code == 2, done.output
    assert message in done.stderr and "hint:" in done.stderr
    assert not out.exists()


def test_bytes_that_are_not_utf8_are_imported_with_replacement_characters(tmp_path: Path) -> None:
    rng = random.Random(14)
    garbage = bytes(rng.choice([b for b in range(1, 256) if b not in (10, 13)]) for _ in range(4000))
    done, out = _import(tmp_path, b"## Steps\n\n1. caf\xe9\n\n" + garbage)
    assert done.returncode == 0, done.stderr
    rb = load_runbook(out).runbook
    assert rb.phases[0].steps[0].manual.prompt == "caf\ufffd"


def test_five_megabytes_are_refused_at_once(tmp_path: Path) -> None:
    big = ("## Phase\n\n- [ ] item {{ x }}\n```bash\necho hi\n```\n" * 120_000).encode()
    assert len(big) > 5_000_000
    (tmp_path / "big.md").write_bytes(big)
    out = tmp_path / "out.yaml"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    done = _cli("import", str(tmp_path / "big.md"), "-o", str(out))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_utime - before < 2
    assert done.exit_code == 2 and "KiB" in done.stderr
    assert not out.exists()


def test_a_long_runbook_under_the_limit_imports_in_bounded_time_and_stays_valid() -> None:
    """~500 KB of headings, items and blocks: the import stops at its limits (steps, text) and the
    result still fits the loader's limits (512 KiB, 20,000 values)."""
    chunk = "## T+0:{n:02d} phase {n} (5 minutes)\n\n- [ ] check {n} {{{{ x }}}}\n\n```bash\necho {n}\n```\n\n"
    md = "".join(chunk.format(n=n % 60) for n in range(6_600))
    assert 480_000 < len(md.encode()) < 512 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    imported = convert(md, source="big.md")
    load_runbook("big.yaml", text=imported.text)
    spent = resource.getrusage(resource.RUSAGE_SELF).ru_utime - before
    assert imported.summary["truncated"] is True
    assert imported.summary["steps"]["total"] <= 601
    assert imported.summary["unmapped"][-1]["why"].startswith("the import stopped here")
    assert spent < 10, f"{spent:.1f}s of CPU"


def _cli(*args: str) -> Any:
    """The real command in-process (a subprocess costs ~0.6 s of start-up): stdout and stderr apart."""
    from tminus.cli.app import cli

    return CliRunner().invoke(cli, list(args))


def test_the_output_is_never_overwritten_without_force_nor_the_input(tmp_path: Path) -> None:
    src = tmp_path / "runbook.md"
    src.write_text("## Steps\n\n1. one\n", encoding="utf-8")
    target = tmp_path / "runbook.yaml"
    target.write_text("keep me\n", encoding="utf-8")
    done = _cli("import", str(src))
    assert done.exit_code == 2 and "--force" in done.stderr
    assert target.read_text(encoding="utf-8") == "keep me\n"
    assert _cli("import", str(src), "--force").exit_code == 0
    assert "review the imported runbook" in target.read_text(encoding="utf-8")
    same = _cli("import", str(src), "-o", str(src), "--force")
    assert same.exit_code == 2 and "itself" in same.stderr
    missing = _cli("import", str(tmp_path / "nope.md"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    no_dir = _cli("import", str(src), "-o", str(tmp_path / "no" / "x.yaml"))
    assert no_dir.exit_code == 2 and "no such folder" in no_dir.stderr
    both = _cli("import", str(src), "-o", "-", "--json")
    assert both.exit_code == 2 and "--json" in both.stderr
    empty_name = _cli("import", str(src), "-o", str(tmp_path / "n.yaml"), "--name", " ")
    assert empty_name.exit_code == 2 and "--name" in empty_name.stderr


def test_stdout_output_and_a_name(tmp_path: Path) -> None:
    src = tmp_path / "runbook.md"
    src.write_text("# Title\n\n## Steps\n\n1. one\n", encoding="utf-8")
    done = _cli("import", str(src), "-o", "-", "--name", "orders-cutover")
    assert done.exit_code == 0, done.output
    assert YAML(typ="safe").load(done.stdout)["name"] == "orders-cutover"
    assert "1 phases" in done.stderr
    assert not list(tmp_path.glob("*.yaml"))


def test_an_output_that_would_not_validate_is_exit_78_and_not_written(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the mapping (simulated) must never leave an invalid runbook on disk."""
    import tminus.importer as importer
    real = importer.convert

    def broken(text: str, *, source: str, name: str | None = None) -> importer.Imported:
        good = real(text, source=source, name=name)
        return importer.Imported(good.text.replace("manual:", "manaul:", 1), good.summary)

    monkeypatch.setattr(importer, "convert", broken)
    src = tmp_path / "runbook.md"
    src.write_text("## Steps\n\n1. one\n", encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = _cli("import", str(src), "-o", str(out))
    assert result.exit_code == 78, result.output
    assert "does not validate" in result.stderr and "did you mean 'manual'" in result.stderr
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tminus-import-")]


FRAGMENTS = [
    "# Title\n", "## Pre-flight checklist (T-48h)\n", "## T+0:05 - Stop (5 minutes)\n", "### Rollback\n",
    "## Go/No-Go\n", "## Monitoring\n", "## Troubleshooting\n", "## Deploy {{ evil }}\n", "#### ${HOME}\n",
    "- [ ] item\n", "- [x] done ✅\n", "1. step\n", "2) other\n", "- bullet\n", "   - nested\n", "• dot\n",
    "```bash\n", "```sql\n", "```\n", "```json\n", "~~~\n", "    indented code\n",
    "curl -f -X POST -H 'A: b' -d '{\"a\": 1}' http://x.test/a\n", "curl -I http://x.test/h\n# Should return 503\n",
    "psql \"$URL\" -c \"SELECT 1;\"\n", "docker exec db psql -c \"DELETE FROM t;\"\n",
    "psql <<'SQL'\nDROP TABLE t;\nSQL\n",
    "{{", "}}", "{%", "%}", "{#", "#}", "{{ '{{' }}", "[", "]", "{", "}", "'", '"', "\\", "`", "\t", "\r\n", "\r",
    "\ufeff", "\x1b", "\x00", "\x7f", "\x85", "\u2028", "\uffff", "\ufffe", "\U0010ffff",
    "ü ≥ 🚀", ": ", " #", "---\n", "...\n", "&a", "*a", "!!python/object", "%YAML",
    "| x", "> y", "\n", "\n\n", "word ", "x" * 300, "T-2h ", "(60-90 minutes)",
    "(9999 hours)", "T-9999h ", "(0 minutes)", "## a\n", "## a (2)\n", "$(rm -rf /)", "; rm -rf / #",
]


@settings(max_examples=int(os.environ.get("TMINUS_FUZZ_EXAMPLES", "40")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60))
def test_any_mix_of_careless_markdown_imports_to_a_valid_runbook(parts: list[str]) -> None:
    imported = convert("".join(parts), source="fuzz.md")
    rb = load_runbook("fuzz.yaml", text=imported.text).runbook
    assert rb.gates[0].name == REVIEW_GATE
    assert convert("".join(parts), source="fuzz.md").text == imported.text


@pytest.mark.parametrize(("md", "check"), [
    # a budget or stage beyond what a runbook allows (366 days) is no guess at all
    ("## T+0:00 go (9999 hours)\n\n1. a\n", lambda rb: rb.phases[0].budget is None),
    ("## Checklist (T-9999h)\n\n1. a\n", lambda rb: rb.gates[1].stage is None),
    ("## Checklist (T-0h)\n\n1. a\n", lambda rb: rb.gates[1].stage is None),
    # the same heading twice, and a heading that is the name the second would get
    ("## a\n\n1. x\n\n## Rollback\n\n1. y\n\n## a\n\n1. z\n\n## a (2)\n\n1. w\n",
     lambda rb: [p.name for p in rb.phases] == ["a", "a (2)", "a (2) (2)"]),
    # hundreds of unclosed brackets (the loader refuses 256 open at once, even in strings)
    ("## " + "[" * 99 + "\n\n1. " + "{" * 5000 + "\n\n```bash\n" + "[" * 300 + "\n```\n",
     lambda rb: len(rb.phases) == 1),
])
def test_guesses_that_would_not_validate_are_not_made(md: str, check: Any) -> None:
    assert check(load_runbook("x.yaml", text=convert(md, source="x.md").text).runbook)


def test_template_marks_after_backslashes_in_a_shell_block_render_as_written() -> None:
    """After a backslash no quoting is safe (the loader refuses `\\{{ x }}` in a command): the
    backslashes and the mark are pasted as they are, and the command renders as written."""
    command = "echo \\{{ x }} \"\\\\{%\" '\\{#' {{ y }} \\\\\\{{"
    md = f"## a\n\n```bash\n{command}\n```\n"
    run = load_runbook("x.yaml", text=convert(md, source="x.md").text).runbook.phases[0].steps[0].run
    rendered = Templater(vars={}, environ={}, secrets=[]).render(run.command, language="shell")
    assert rendered.replace("'{{'", "{{") == command
