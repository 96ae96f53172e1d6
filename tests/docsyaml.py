"""A YAML block of the docs as a runbook: a whole runbook as it is, a fragment (steps, phases, gates,
verify, a monitor's rules, a vars or environments block...) placed in a runbook around it.

The runbook around a fragment is the nearest whole runbook shown above it on the same page (so a rule
fragment under the monitoring example meets that example's probes and channels), or a minimal one.
Names a fragment uses but does not define (`vars.X`, `secrets.X`, a channel, a probe) are declared in
the wrapper: a fragment is shown out of context, its own keys and values are what is checked.
"""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from tests.docblocks import Block

from tminus.runbook.models import KIND_FIELDS, AlertRule, Runbook

TOP_KEYS = {f.alias or n for n, f in Runbook.model_fields.items()}
RULE_KEYS = {f.alias or n for n, f in AlertRule.model_fields.items()} - {"name"}
PLACES = ("whole", "top", "steps", "phases", "gates", "rules", "step")


def _load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _dump(data: Any) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


def place_of(data: Any, marked: str | None = None) -> str | None:
    """Where a block goes: `whole`, `top` (top-level keys), `steps`, `phases`, `gates`, `rules`, or
    None when it cannot be told (the block needs a `fragment PLACE` marker)."""
    if marked:
        return marked if marked in PLACES else None
    if isinstance(data, dict):
        if set(data) & set(KIND_FIELDS):
            return "step"
        if "name" in data and "steps" not in data and "checks" not in data:
            return "whole"  # a runbook (an unknown key in it is for validation to report)
        if set(data) <= TOP_KEYS:
            return "top"
        if set(data) == {"rules"}:
            return "rules"
        return None
    if isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        keys = set().union(*data)
        if keys & set(KIND_FIELDS):
            return "steps"
        if "steps" in keys:
            return "phases"
        if "checks" in keys:
            return "gates"
        if "name" in keys and keys & RULE_KEYS:  # an unknown key among them is for validation
            return "rules"
    return None


def runbook_text(block: Block, context: dict[str, Any] | None) -> tuple[str, str]:
    """(place, the runbook text to validate) for a YAML block; raises ValueError if unplaceable."""
    data = _load(block.body)
    marked = block.marker_arg if block.marker == "fragment" else None
    place = place_of(data, marked)
    if place is None:
        raise ValueError(f"{block.where}: cannot tell where this YAML goes; mark it "
                         f"<!-- docs-test: fragment PLACE --> with PLACE one of {', '.join(PLACES)}")
    if place == "whole":
        return place, block.body
    doc: dict[str, Any] = copy.deepcopy(context) if context else {}
    doc["name"] = "docs-fragment"
    if place == "top":
        around = doc.get("vars")
        doc.update(data)
        if isinstance(around, dict) and isinstance(data.get("vars"), dict):
            doc["vars"] = {**around, **data["vars"]}  # the fragment's vars join those around it
    elif place in ("steps", "step"):
        doc["phases"] = [{"name": "fragment", "steps": data if place == "steps" else [data]}]
    elif place in ("phases", "gates"):
        doc[place] = data
    else:  # rules
        # A monitor of its own: one HTTP probe per probe the rules name (one when they name none).
        rules = data["rules"] if isinstance(data, dict) else data
        names = dict.fromkeys(rule.get("probe") or "health" for rule in rules)
        doc["monitor"] = {"duration": "30m", "interval": "30s", "baseline": "10m", "rules": rules,
                          "probes": [{"name": n, "http": "http://127.0.0.1:9/health"} for n in names]}
    _declare_what_it_uses(doc, block.body)
    _declare_steps_it_uses(doc, block.body)
    return place, _dump(doc)


def _declare_what_it_uses(doc: dict[str, Any], body: str) -> None:
    variables = doc.setdefault("vars", {})
    for name in re.findall(r"\bvars\.(\w+)", body):
        variables.setdefault(name, "x")
    secrets = doc.setdefault("secrets", [])
    for name in re.findall(r"\bsecrets\.(\w+)", body):
        if name not in secrets:
            secrets.append(name)
    channels = doc.setdefault("channels", {})
    for names in re.findall(r"^\s*notify:\s*\[([^\]]*)\]", body, re.M):
        for name in (n.strip() for n in names.split(",") if n.strip()):
            channels.setdefault(name, {"url": "http://127.0.0.1:9/hook"})
    for key in ("vars", "secrets", "channels"):
        if not doc[key]:
            del doc[key]


def _declare_steps_it_uses(doc: dict[str, Any], body: str) -> None:
    """Steps the fragment refers to (`steps.ID`) but shows no step for: a phase before it defines them."""
    defined = set(re.findall(r"^\s*(?:- )?id:\s*(\w+)", _dump(doc), re.M))
    missing = [n for n in dict.fromkeys(re.findall(r"\bsteps\.(\w+)", body)) if n not in defined]
    if missing:
        context = {"name": "context", "steps": [{"id": n, "run": "true"} for n in missing]}
        doc["phases"] = [context, *doc.get("phases", [])]


def contexts(blocks: list[Block]) -> dict[Block, dict[str, Any] | None]:
    """Each YAML block's context: the nearest whole runbook above it on its page."""
    out: dict[Block, dict[str, Any] | None] = {}
    last: dict[Path, dict[str, Any]] = {}
    for block in blocks:
        if block.kind != "yaml":
            continue
        out[block] = last.get(block.page)
        try:
            data = _load(block.body)
        except Exception:  # an invalid block shows a parse error; it is no context
            continue
        if block.marker != "invalid" and place_of(data) == "whole":
            last[block.page] = data
    return out


def place_vars_files(text: str, folder: Path) -> None:
    """Each `vars_file: PATH` an example names, as an empty mapping: the example shows the runbook,
    the files' contents are shown beside it (and tests/e2e/test_vars_file.py runs it with them)."""
    for name in re.findall(r"^\s*vars_file:\s*([^\s#]+)", text, re.M):
        target = folder / name.strip("\"'")
        if target.resolve().is_relative_to(folder.resolve()) and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}\n")


def yaml_problem(block: Block, context: dict[str, Any] | None, path: Path) -> str | None:
    """What is wrong with a YAML block, or None: a block must validate (placed, if a fragment), and one
    marked `invalid MESSAGE` must fail to, with MESSAGE among its problems."""
    from tminus.errors import RunbookError
    from tminus.runbook.loader import load_runbook

    try:
        _place, text = runbook_text(block, context)
    except ValueError as exc:
        return str(exc)
    except Exception as exc:  # not YAML at all: an invalid block may show that too
        text, failure = block.body, f"{block.where}: not YAML: {exc}"
    else:
        failure = None
    place_vars_files(text, path.parent)
    try:
        load_runbook(path, text=text)
    except RunbookError as exc:
        if block.marker == "invalid":
            return None if block.marker_arg and block.marker_arg in str(exc) else (
                f"{block.where}: fails, but not with {block.marker_arg!r}:\n{exc}")
        return f"{block.where}: does not validate:\n{exc}"
    if block.marker == "invalid":
        return f"{block.where}: marked invalid, yet it validates"
    return failure
