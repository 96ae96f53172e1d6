"""The `env` kind: judged against ctx.environ, never revealing values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers_kinds import run_step

ENVIRON = {"API_URL": "https://api", "EMPTY": "", "MODE": "prod", "AUTH_DISABLED": "s3cr3t-true"}


def env(spec: dict[str, Any], tmp_path: Path) -> Any:
    return run_step({"env": spec}, tmp_path, environ=ENVIRON)


def test_all_conditions_pass(tmp_path: Path) -> None:
    obs = env(
        {
            "present": ["API_URL"],
            "absent": ["DEBUG"],
            "equals": {"MODE": "prod"},
            "not_equal": {"MODE": ["dev", "test"], "MISSING": "x"},
        },
        tmp_path,
    )
    assert obs.failures == [] and obs.error is None
    assert obs.values == {"ok": True, "failed": []}


def test_failures_name_variables_but_never_values(tmp_path: Path) -> None:
    obs = env(
        {
            "present": ["EMPTY", "NOPE"],
            "absent": ["MODE"],
            "equals": {"MODE": "staging", "GONE": "1"},
            "not_equal": {"AUTH_DISABLED": ["s3cr3t-true", "1"]},
        },
        tmp_path,
    )
    assert obs.failures == [
        "EMPTY is set but empty",
        "NOPE is not set; export it before running",
        "MODE is set but must be absent; unset it",
        "MODE does not have the expected value",
        "GONE is not set (it must have a specific value)",
        "AUTH_DISABLED is set to a forbidden value",
    ]
    assert obs.values["failed"] == ["EMPTY", "NOPE", "MODE", "GONE", "AUTH_DISABLED"]
    text = json.dumps([obs.failures, obs.values, obs.evidence])
    for secret in ("s3cr3t-true", "prod", "https://api", "staging"):
        assert secret not in text


def test_not_equal_single_value(tmp_path: Path) -> None:
    assert env({"not_equal": {"MODE": "prod"}}, tmp_path).failures == ["MODE is set to a forbidden value"]
    assert env({"not_equal": {"MODE": "dev"}}, tmp_path).failures == []
