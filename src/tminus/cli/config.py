"""`tminus config`: the resolved settings (ledger, environment, operator) and where each came from."""

from __future__ import annotations

import click

from tminus.cli.common import emit_json, json_option, ledger_option, operator_option, settings


def register(cli: click.Group) -> None:
    cli.add_command(config)


@click.command()
@click.option("-e", "--env", "environment", default=None, metavar="ENV", help="As -e would set it.")
@operator_option
@ledger_option
@json_option
def config(environment: str | None, operator: str | None, ledger_url: str | None, as_json: bool) -> None:
    """Show the settings every command would use here and where each came from (flag, environment
    variable, tminus.toml path:line, found upward, default). Reads nothing else, creates nothing."""
    from tminus.ledger.engines import mask

    resolved = settings(ledger_url=ledger_url, environment=environment, operator=operator)
    data = resolved.to_dict()
    if data["ledger"]["value"]:
        data["ledger"]["value"] = mask(data["ledger"]["value"])
    if as_json:
        emit_json(data)
        return
    where = data["config"]
    click.echo(f"config file: {where['path'] or '(none)'}  [{where['source']}]")
    for name in ("ledger", "environment", "operator"):
        value = data[name]["value"]
        click.echo(f"{name}: {value if value is not None else '(not set)'}  [{data[name]['source']}]")
