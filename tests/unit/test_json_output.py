"""`output: json`'s reading of stdout: where it stops being JSON, shown with secrets masked before the cut."""

from __future__ import annotations

import json

import pytest

from tminus.kinds.jsonoutput import JSON_LIMIT, NotJson, excerpt, parse_output
from tminus.templating.masking import Masker

SECRET = "s3cr3t-value-abc"


def _refusal(text: str, masker: Masker | None = None) -> str:
    with pytest.raises(NotJson) as err:
        parse_output(text, masker or Masker())
    return str(err.value)


def test_a_document_with_whitespace_around_it_is_read() -> None:
    assert parse_output('\n  {"rows": [1, 2]}\n\n', Masker()) == {"rows": [1, 2]}
    assert parse_output("42\n", Masker()) == 42


def test_the_place_is_line_column_and_character() -> None:
    message = _refusal('{\n  "rows": 42,\n  "ok": tru\n}')
    assert "Expecting value at line 3, column 9 (character 25)" in message
    assert '⟨here⟩tru' in message


def test_two_documents_are_not_one() -> None:
    assert "Extra data at line 2, column 1" in _refusal('{"a": 1}\n{"b": 2}\n')


def test_a_secret_across_the_error_is_masked_whole() -> None:
    masker = Masker([SECRET])
    text = '{"token": "' + SECRET[:6] + "\x01" + SECRET[6:] + '"}'  # a control character inside the secret
    assert SECRET[:6] not in excerpt(text, text.index("\x01"), Masker([SECRET[:6] + "\x01" + SECRET[6:]]))
    message = _refusal('{"token": "' + SECRET + '", oops}', masker)
    assert SECRET not in message and '***\\", ⟨here⟩oops}' in message


def test_a_long_line_is_cut_around_the_place() -> None:
    text = '{"pad": "' + "x" * 5000 + '", oops}'
    shown = json.loads(excerpt(text, text.index("oops"), Masker()))
    assert shown.startswith("...") and shown.endswith("oops}") and len(shown) < 140
    assert "⟨here⟩oops}" in shown


def test_a_secret_far_before_the_place_never_shows_in_part() -> None:
    text = "[" + " " * 1050 + SECRET + " " * 40 + "oops"
    shown = excerpt(text, text.index("oops"), Masker([SECRET]))
    assert "s3cr3t" not in shown and "abc" not in shown


def test_limits() -> None:
    assert "reads at most 1,000,000" in _refusal(" " * (JSON_LIMIT + 1))
    assert _refusal("") == "stdout is empty; output: json expects one JSON document"
    assert "nested too deeply" in _refusal("[" * 100_000 + "]" * 100_000)
