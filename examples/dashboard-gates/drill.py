#!/usr/bin/env python3
"""Copy this example to DEST with a shorter monitor window, for a drill (the demo, the tests).

The runbook's monitor durations are production values (a 30 minute watch, a probe every 15 s,
degraded for 5 minutes). tminus parses durations when it loads a runbook, so they cannot be
templates or --var overrides; a drill runs a copy instead. Only the lines named are changed, in
place, comments kept; everything else in the copy (gates, phases, releases, units) is the same,
but for RUNBOOK.md, the runbook's page (`tminus docs`), rendered again for the copy's window.

    python3 drill.py /tmp/dash --duration 20s --interval 1s --baseline 3s \\
        --rule "sustained degraded state:for=3s" --rule "worker restart churn:window=1m"
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WINDOW_KEYS = ("duration", "interval", "baseline")


def shorten(text: str, window: dict[str, str], rules: list[tuple[str, str, str]]) -> str:
    """The runbook text with the monitor's window keys and the named rule fields replaced."""
    lines = text.split("\n")
    try:
        start = lines.index("monitor:")
    except ValueError:
        raise SystemExit("drill.py: the runbook has no top-level `monitor:` section") from None
    for key, value in window.items():
        for i in range(start + 1, len(lines)):
            match = re.match(rf"^  {key}: *([^ #]+)", lines[i])
            if match:
                lines[i] = f"  {key}: {value}  # drill; runbook.yaml: {match[1]}"
                break
        else:
            raise SystemExit(f"drill.py: monitor.{key} not found")
    for name, key, value in rules:
        begin = next((i for i in range(start, len(lines)) if lines[i].strip() == f"- name: {name}"), None)
        if begin is None:
            raise SystemExit(f"drill.py: no monitor rule named {name!r}")
        end = next((i for i in range(begin + 1, len(lines)) if lines[i].lstrip().startswith("- name:")), len(lines))
        for i in range(begin, end):
            match = re.search(rf"\b{key}: *([^,}} #]+)", lines[i])
            if match:
                code = lines[i].split("  #", 1)[0].rstrip()  # the old comment may no longer hold
                code = code[: match.start(1)] + value + code[match.end(1):]
                lines[i] = f"{code}  # drill; runbook.yaml: {key}: {match[1]}"
                break
        else:
            raise SystemExit(f"drill.py: rule {name!r} has no {key}")
    return "\n".join(lines)


def regenerate_page(dest: Path) -> None:
    """The copy's RUNBOOK.md (`tminus docs`), rendered again: the documentation gate checks that the
    page says what the runbook does, and the drill's runbook has its own monitor window."""
    done = subprocess.run([sys.executable, "-m", "tminus", "docs", "runbook.yaml", "-o", "RUNBOOK.md"],
                          cwd=dest, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"drill.py: `tminus docs` failed in {dest} (run drill.py with the python that has "
                         f"tminus, e.g. .venv/bin/python):\n{done.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="where the copy goes (must not exist)")
    for key in WINDOW_KEYS:
        parser.add_argument(f"--{key}", help=f"monitor.{key}, e.g. 20s")
    parser.add_argument("--rule", action="append", default=[], metavar="NAME:KEY=VALUE",
                        help="a field of one rule, e.g. 'sustained degraded state:for=3s' (repeatable)")
    args = parser.parse_args(argv)
    rules = []
    for spec in args.rule:
        match = re.fullmatch(r"(.+):(\w+)=(\S+)", spec)
        if match is None:
            parser.error(f"--rule {spec!r}: expected NAME:KEY=VALUE")
        rules.append((match[1], match[2], match[3]))
    if args.dest.exists():
        parser.error(f"{args.dest} exists; give a new directory")
    window = {k: getattr(args, k) for k in WINDOW_KEYS if getattr(args, k)}
    text = shorten((HERE / "runbook.yaml").read_text(encoding="utf-8"), window, rules)
    shutil.copytree(HERE, args.dest, ignore=shutil.ignore_patterns("state", "__pycache__", "*.log"))
    (args.dest / "runbook.yaml").write_text(text, encoding="utf-8")
    if text != (HERE / "runbook.yaml").read_text(encoding="utf-8"):
        regenerate_page(args.dest)
    changes = [f"monitor.{k}={v}" for k, v in window.items()] + [f"{n}.{k}={v}" for n, k, v in rules]
    print(f"drill copy in {args.dest}: {', '.join(changes) or 'unchanged'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
