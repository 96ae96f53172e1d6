"""The docs test's own machinery can fail: an unclassified block, a fragment or command that is wrong,
an `invalid` block that validates are each reported."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from tests.docblocks import Block, blocks, commands, parse_cli
from tests.docsyaml import contexts, yaml_problem

PAGE = '''# A page

```
untagged
```

```yaml
name: whole
vars: {release: v1}
phases:
  - name: p
    steps: [{run: "echo {{ vars.release }}"}]
```

```yaml
- run: "true"
  nme: typo
```

```yaml
- name: p
  steps: [{run: "echo {{ vars.release }}"}]
```

<!-- docs-test: invalid unknown key 'nme' -->
```yaml
name: oops
nme: x
```

<!-- docs-test: invalid unknown key 'nme' -->
```yaml
name: fine
```

```yaml
- name: pool saturated
  when: jsonpath "$.pool" >= 0.9
  for: 5m
```

<!-- docs-test: run -->
```console
$ tminus run runbook.yaml -e prod \\
    --var release=v3   # rolls back, exit 11
output line
$ tminus plan runbook.yaml --no-such-option
```
'''


@pytest.fixture
def page(tmp_path: Path) -> list[Block]:
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    return blocks([path])


def test_an_untagged_block_is_unclassified(page: list[Block]) -> None:
    assert page[0].kind is None
    assert [b.kind for b in page[1:]] == ["yaml"] * 6 + ["shell"]


def test_yaml_blocks_are_judged(page: list[Block], tmp_path: Path) -> None:
    ctx = contexts(page)
    problems = [yaml_problem(b, ctx.get(b), tmp_path / "r.yaml") for b in page[1:7]]
    assert problems[0] is None  # a whole runbook
    assert problems[1] is not None and "unknown key 'nme'" in problems[1]  # a step list with a typo
    assert problems[2] is None  # a phase list; vars.release is declared around it
    assert problems[3] is None  # invalid, as it says
    assert problems[4] is not None and "marked invalid, yet it validates" in problems[4]
    assert problems[5] is None  # a rule, in a monitor of its own


def test_command_lines_join_continuations_and_read_the_exit_code(page: list[Block]) -> None:
    lines = commands(page[7])
    assert [c.tminus_args for c in lines] == [
        ["run", "runbook.yaml", "-e", "prod", "--var", "release=v3"],
        ["plan", "runbook.yaml", "--no-such-option"],
    ]
    assert lines[0].expected_exit == 11 and lines[1].expected_exit is None
    parse_cli(lines[0].tminus_args or [])
    with pytest.raises(click.UsageError, match="no-such-option"):
        parse_cli(lines[1].tminus_args or [])


def test_resume_with_var_is_refused_by_the_parser() -> None:
    with pytest.raises(click.UsageError, match="not taken by `tminus resume`"):
        parse_cli(["resume", "RUN", "--var", "a=b"])
    with pytest.raises(click.UsageError, match=r"(?i)no such command"):
        parse_cli(["ledger", "nope"])
