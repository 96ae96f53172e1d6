"""GitHub Actions workflow commands: the escaping GitHub's parser needs, exactly."""

from __future__ import annotations

from tminus.cli import gh_annotations as gha


def test_data_escapes_percent_cr_lf_and_nothing_else() -> None:
    assert gha.escape_data("50%\r\nnext: a, b") == "50%25%0D%0Anext: a, b"
    assert gha.escape_data("%0A") == "%250A"  # an escape already written is not taken as one


def test_properties_escape_colon_and_comma_too() -> None:
    assert gha.escape_property("a: b, c%\n") == "a%3A b%2C c%25%0A"


def test_a_command_with_every_property_and_a_hostile_message() -> None:
    line = gha.command("error", "line 1\nline 2: 100%, done", file="dir,x/rb:1.yaml", line=12, col=5,
                       title="step 'a, b: c' failed")
    assert line == ("::error file=dir%2Cx/rb%3A1.yaml,line=12,col=5,title=step 'a%2C b%3A c' failed"
                    "::line 1%0Aline 2: 100%25, done")
    assert "\n" not in line


def test_a_command_without_properties() -> None:
    assert gha.command("notice", "done") == "::notice::done"


def test_locations_split_from_the_right_so_a_path_may_hold_colons() -> None:
    assert gha.split_location("rb.yaml:8:9") == ("rb.yaml", 8, 9)
    assert gha.split_location("C:/work/rb.yaml:8") == ("C:/work/rb.yaml", 8, None)
    assert gha.split_location("a:b:c.yaml:3:4") == ("a:b:c.yaml", 3, 4)
    assert gha.split_location("rb.yaml") == ("rb.yaml", None, None)
    assert gha.split_location(None) == (None, None, None)


def test_enabled_only_for_true() -> None:
    assert gha.enabled({"GITHUB_ACTIONS": "true"})
    assert gha.enabled({"GITHUB_ACTIONS": "TRUE"})
    assert not gha.enabled({"GITHUB_ACTIONS": "false"})
    assert not gha.enabled({})


def test_paths_relative_to_the_workspace(tmp_path) -> None:
    (tmp_path / "ops").mkdir()
    inside = tmp_path / "ops" / "rb.yaml"
    assert gha.workspace_path(str(inside), {"GITHUB_WORKSPACE": str(tmp_path)}) == "ops/rb.yaml"
    assert gha.workspace_path("/elsewhere/rb.yaml", {"GITHUB_WORKSPACE": str(tmp_path)}) == "/elsewhere/rb.yaml"
    assert gha.workspace_path("rb.yaml", {}) == "rb.yaml"
