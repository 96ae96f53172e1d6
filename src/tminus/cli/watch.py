"""`tminus monitor FILE`: run only the monitoring window against a live service."""

from __future__ import annotations

from typing import Any

import click

from tminus.cli.common import env_options, fail, json_option, ledger_option, load_document, operator_option
from tminus.cli.running import build_options, drive, operator_flags, parse_duration_option, run_options
from tminus.engine.exitcodes import Exit


def register(cli: Any) -> None:
    @cli.command("monitor")
    @click.argument("file", type=click.Path(dir_okay=False))
    @env_options
    @click.option("--duration", metavar="DURATION", help="Watch this long (default: the runbook's monitor.duration).")
    @click.option("--interval", metavar="DURATION", help="Probe this often (default: monitor.interval).")
    @click.option("--baseline", metavar="DURATION",
                  help="Probe this long first, before rules judge: the baseline of ratio rules "
                       "(default: the runbook's monitor.baseline; 0s for none).")
    @run_options
    @operator_option
    @ledger_option
    @json_option
    def monitor(file: str, environment: str | None, var_items: tuple[str, ...], duration: str | None,
                interval: str | None, baseline: str | None, yes: bool, no_input: bool, lock_wait: str,
                verbose: bool, operator: str | None, ledger_url: str | None, as_json: bool) -> None:
        """Watch a live service with the runbook's monitor section only (after a deploy done by other
        means): probes every interval, alert rules, actions. A firing rollback rule runs the runbook's
        `rollback:` steps. A live table on a TTY, plain lines otherwise.

        \b
        Exit codes: 0 the window passed · 11 rolled back · 12 rollback failed · 13 aborted ·
        14 locked · 15 a pause nobody answered · 130 interrupted (resumable).
        """
        doc = load_document(file)
        spec = doc.runbook.monitor
        if spec is None:
            fail(f"{file} has no monitor section", Exit.USAGE,
                 hint="add monitor: {duration: 10m, interval: 15s, probes: [...], rules: [...]}")
        if interval is not None:
            seconds = parse_duration_option(interval, "--interval")
            if seconds <= 0:
                fail("--interval must be more than 0", Exit.USAGE)
            spec.interval = seconds
        opts = build_options(doc, environment, var_items, operator, **operator_flags(yes, no_input, lock_wait))
        watch_for = None if duration is None else parse_duration_option(duration, "--duration")
        learn_for = None if baseline is None else parse_duration_option(baseline, "--baseline")
        drive(doc, opts, ledger_url, as_json, verbose, lambda s: s.watch(baseline=learn_for, duration=watch_for))
