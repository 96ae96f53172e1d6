"""The runbooks the issue-15 cases run, as YAML text."""

from __future__ import annotations


def empty_runbook() -> str:
    """Nothing but a name: the run still opens the ledger, takes its lease and records a go."""
    return "name: bench-empty\n"


def run_steps(count: int) -> str:
    """One phase of `count` `run: "true"` steps (no phase at all for 0: the empty runbook's cost)."""
    if count == 0:
        return "name: bench-steps\n"
    lines = ["name: bench-steps", "phases:", "  - name: p", "    steps:"]
    lines += ['      - run: "true"'] * count
    return "\n".join(lines) + "\n"


def http_check(port: int) -> str:
    return (f'{{http: {{url: "http://127.0.0.1:{port}/health"}}, '
            """expect: ["status == 200", 'jsonpath "$.ok" == true']}""")


def gate_checks(count: int, port: int) -> str:
    """One gate of `count` HTTP checks (`tminus gate` runs them)."""
    lines = ["name: bench-http-gate", "gates:", "  - name: g", "    checks:"]
    lines += [f"      - {http_check(port)}"] * count
    return "\n".join(lines) + "\n"


def verify_checks(count: int, port: int) -> str:
    """A verify section of `count` HTTP checks and nothing else (`tminus run` runs it, then goes)."""
    lines = ["name: bench-http-verify", "verify:"]
    lines += [f"  - {http_check(port)}"] * count
    return "\n".join(lines) + "\n"


def mixed(count: int) -> str:
    """A release runbook of `count` steps (as `tminus validate` counts them, undo steps included) as
    an operator writes one, for `validate` and `plan`: vars and templates, a gate of HTTP checks,
    phases of named `run` steps (every other with its undo), verify checks; a tenth of the steps are
    gate checks and a tenth verify checks (at least one each)."""
    checks = max(1, count // 10)
    lines = [
        "name: bench-release",
        "description: a release as written by hand, for the validate and plan benchmarks",
        "vars:",
        "  api: http://127.0.0.1:8080",
        "  version: 2.4.1",
        "gates:",
        "  - name: service is healthy",
        "    checks:",
    ]
    for i in range(checks):
        lines += [f'      - http: "{{{{ vars.api }}}}/health/{i}"',
                  "        expect: [status == 200, duration < 500ms]"]
    lines.append("phases:")
    left, i = max(1, count - 2 * checks), 0
    while left > 0:
        if i % 10 == 0:
            lines += [f"  - name: phase-{i // 10}", "    budget: 5m", "    steps:"]
        lines += [f"      - name: deploy part {i}",
                  f'        run: "echo deploying part {i} of {{{{ vars.version }}}}"',
                  "        timeout: 30s"]
        left -= 1
        if i % 2 == 0 and left > 0:
            lines += ["        undo:", f'          - run: "echo undoing part {i}"']
            left -= 1
        i += 1
    lines.append("verify:")
    for i in range(checks):
        lines += [f'  - http: "{{{{ vars.api }}}}/orders/{i}?limit=1"',
                  "    expect: [status == 200, 'jsonpath \"$.ok\" == true']"]
    return "\n".join(lines) + "\n"
