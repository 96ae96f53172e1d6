"""tminus.toml: found upward, validated with file:line, and the precedence of every setting
(flag > environment variable > tminus.toml > default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tminus.cli.settings import ConfigError, find_upward, load_config, resolve, resolve_relative_sqlite

CLEAN: dict[str, str] = {}


def test_no_config_no_ledger_is_the_working_directory_default(tmp_path: Path) -> None:
    s = resolve(cwd=tmp_path, environ=CLEAN)
    assert s.config_path is None and s.config_source == "none"
    assert s.ledger.value == "sqlite:///.tminus/ledger.db" and s.ledger.source.startswith("default")
    assert s.environment.value is None
    assert s.operator.value and s.operator.source == "default (the login name)"


def test_an_existing_ledger_is_found_upward_like_git(tmp_path: Path) -> None:
    (tmp_path / ".tminus").mkdir()
    (tmp_path / ".tminus" / "ledger.db").write_bytes(b"")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    s = resolve(cwd=deep, environ=CLEAN)
    assert s.ledger.value == f"sqlite:///{tmp_path.resolve()}/.tminus/ledger.db"
    assert s.ledger.source.startswith("found upward")
    # a nearer one wins
    (deep / ".tminus").mkdir()
    (deep / ".tminus" / "ledger.db").write_bytes(b"")
    assert resolve(cwd=deep, environ=CLEAN).ledger.value == f"sqlite:///{deep.resolve()}/.tminus/ledger.db"


def test_config_is_found_upward_and_a_relative_sqlite_path_is_beside_it(tmp_path: Path) -> None:
    (tmp_path / "tminus.toml").write_text('# project\nledger = "sqlite:///var/ledger.db"\nenvironment = "staging"\n'
                                          'operator = "deployer"\n')
    deep = tmp_path / "services" / "api"
    deep.mkdir(parents=True)
    s = resolve(cwd=deep, environ=CLEAN)
    assert s.config_path == (tmp_path / "tminus.toml").resolve()
    assert s.ledger.value == f"sqlite:///{tmp_path.resolve()}/var/ledger.db"
    assert s.ledger.source == f"{s.config_path}:2 ledger"
    assert (s.environment.value, s.environment.source) == ("staging", f"{s.config_path}:3 environment")
    assert (s.operator.value, s.operator.source) == ("deployer", f"{s.config_path}:4 operator")


def test_a_config_beats_a_ledger_found_upward(tmp_path: Path) -> None:
    (tmp_path / ".tminus").mkdir()
    (tmp_path / ".tminus" / "ledger.db").write_bytes(b"")
    (tmp_path / "tminus.toml").write_text('ledger = "shared.db"\n')
    assert resolve(cwd=tmp_path, environ=CLEAN).ledger.value == f"sqlite:///{tmp_path.resolve()}/shared.db"


def test_precedence_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    (tmp_path / "tminus.toml").write_text('ledger = "file.db"\noperator = "from-file"\nenvironment = "stage"\n')
    env = {"TMINUS_LEDGER": "sqlite:////env.db", "TMINUS_OPERATOR": "from-env"}
    s = resolve(cwd=tmp_path, environ=env, ledger="sqlite:////flag.db", operator="from-flag", environment="prod")
    assert [s.ledger.value, s.operator.value, s.environment.value] == ["sqlite:////flag.db", "from-flag", "prod"]
    assert [s.ledger.source, s.operator.source, s.environment.source] == [
        "flag --ledger", "flag --operator", "flag --env"]
    s = resolve(cwd=tmp_path, environ=env)
    assert [s.ledger.value, s.operator.value] == ["sqlite:////env.db", "from-env"]
    assert [s.ledger.source, s.operator.source] == ["env TMINUS_LEDGER", "env TMINUS_OPERATOR"]
    # Click hands the env value in as if a flag: the source still says env
    s = resolve(cwd=tmp_path, environ=env, ledger="sqlite:////env.db", ledger_from_env=True)
    assert s.ledger.source == "env TMINUS_LEDGER"
    s = resolve(cwd=tmp_path, environ=CLEAN)
    assert [s.ledger.value, s.operator.value, s.environment.value] == [
        f"sqlite:///{tmp_path.resolve()}/file.db", "from-file", "stage"]


def test_config_flag_and_env_beat_discovery(tmp_path: Path) -> None:
    (tmp_path / "tminus.toml").write_text('ledger = "near.db"\n')
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "prod.toml").write_text('ledger = "far.db"\n')
    s = resolve(cwd=tmp_path, environ={"TMINUS_CONFIG": str(other / "prod.toml")})
    assert s.ledger.value == f"sqlite:///{other.resolve()}/far.db" and s.config_source == "env TMINUS_CONFIG"
    s = resolve(cwd=tmp_path, environ=CLEAN, config_flag=str(other / "prod.toml"))
    assert s.config_source == "flag --config"
    with pytest.raises(ConfigError, match="no such file"):
        resolve(cwd=tmp_path, environ=CLEAN, config_flag=str(tmp_path / "missing.toml"))


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tminus.toml"
    path.write_text('environment = "prod"\nledger = "unterminated\n')
    with pytest.raises(ConfigError, match=rf"{path}:2: not valid TOML"):
        load_config(path)


def test_unknown_key_and_wrong_type_name_file_line_and_hint(tmp_path: Path) -> None:
    path = tmp_path / "tminus.toml"
    path.write_text('ledger = "x.db"\nenviroment = "prod"\noperator = 7\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}:2: unknown key 'enviroment'" in message
    assert f"{path}:3: 'operator': Input should be a valid string" in message
    assert caught.value.hint and "ledger, environment, operator" in caught.value.hint


def test_a_table_is_an_unknown_key_too(tmp_path: Path) -> None:
    path = tmp_path / "tminus.toml"
    path.write_text('ledger = "x.db"\n\n[environments.prod]\nledger = "p.db"\n')
    with pytest.raises(ConfigError, match=rf"{path}:3: unknown key 'environments'"):
        load_config(path)


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///rel/l.db", "sqlite:////base/rel/l.db"),
    ("rel/l.db", "sqlite:////base/rel/l.db"),
    ("sqlite:////abs/l.db", "sqlite:////abs/l.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_relative_sqlite_paths(url: str, expected: str) -> None:
    assert resolve_relative_sqlite(url, Path("/base")) == expected


def test_find_upward_stops_at_the_root(tmp_path: Path) -> None:
    assert find_upward(tmp_path, "no-such-file-anywhere.toml") is None
