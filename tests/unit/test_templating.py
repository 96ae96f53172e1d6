"""The templater the engine renders every runbook string with, and the masker."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tminus.errors import TemplateError
from tminus.runbook.models import HttpSpec, MigrateSpec, RunSpec, Step, TcpSpec, WaitSpec
from tminus.templating.masking import Masker
from tminus.templating.templater import Templater

SECRET = "hunter2-s3cr3t"


def templater(plan_mode: bool = False, **vars: Any) -> Templater:
    return Templater(
        vars={"port": 8080, "db": {"host": "db1"}, "items": 3, **vars},
        environ={"HOME": "/home/op", "DB_PASSWORD": SECRET},
        secrets=["DB_PASSWORD", "API_TOKEN"],
        run={"id": "r-1", "environment": "prod"},
        plan_mode=plan_mode,
    )


# --- Masker -------------------------------------------------------------------------------


def test_masker_masks_longest_first_and_ignores_short_values() -> None:
    m = Masker(["abc", "abcdef", "", "xy"])
    assert m.mask("abcdef abc xy") == "*** *** xy"


def test_masker_masks_structures() -> None:
    m = Masker([SECRET])
    data = {"cmd": f"login {SECRET}", SECRET: [SECRET, (1, f"x{SECRET}")], "n": 5}
    assert m.mask_obj(data) == {"cmd": "login ***", "***": ["***", (1, "x***")], "n": 5}


def test_masker_escapes_regex_characters() -> None:
    m = Masker()
    m.add("a.c*d")
    assert m.mask("abcd a.c*d") == "abcd ***"


def test_secret_values_never_survive_masking_of_rendered_output() -> None:
    t = templater()
    out = t.render("psql -p {{ env.DB_PASSWORD }} {{ secrets.DB_PASSWORD | shquote }} {{ secrets | tojson }}")
    assert SECRET in out  # the command itself needs the value...
    assert SECRET not in t.masker.mask(out)  # ...but nothing shown or stored does
    assert t.masker.mask(out).count("***") == 3


TRICKY = "p@ss w/rd+K3y:'q!é\"$x"  # needs URL, shell and JSON escaping


def _forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "quote": quote(value), "quote safe=''": quote(value, safe=""), "quote_plus": quote_plus(value),
        "lower-case hex": quote(value, safe="").lower(), "upper": value.upper(), "lower": value.lower(),
        "title": value.title(), "base64": base64.b64encode(raw).decode(),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode(),
        "json": json.dumps(value)[1:-1], "json unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "shlex.quote": shlex.quote(value), "bash @Q": "'" + value.replace("'", "'\\''") + "'",
        "double quotes": value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$"),
        "split across lines": "\n".join(value[i:i + 3] for i in range(0, len(value), 3)),
        "split, CRLF": "\r\n".join(value[i:i + 5] for i in range(0, len(value), 5)),
        "wrapped base64": "\n".join(textwrap.wrap(base64.b64encode(raw * 4).decode(), 20)),
    }


@pytest.mark.parametrize("name", list(_forms(TRICKY)))
def test_masker_masks_derived_forms(name: str) -> None:
    form = _forms(TRICKY)[name]
    masked = Masker([TRICKY]).mask(f"before {form} after")
    assert masked.startswith("before ") and masked.endswith(" after") and "***" in masked, masked
    for piece in ("K3y", "SzN5", "%2BK3y"):  # nothing recognisable of the secret is left
        assert piece.lower() not in masked.lower(), masked


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"12345678"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_masker_masks_a_secret_inside_a_base64_stream_at_any_offset(prefix: bytes, encode: Any) -> None:
    stream = encode(prefix + TRICKY.encode() + b"@db:5432").decode()
    masked = Masker([TRICKY]).mask(stream)
    assert "***" in masked
    # what is left are the characters the neighbouring bytes share with the secret: at most 3 + 2
    assert len(masked) - len("***") <= len(encode(prefix).decode()) + len(encode(b"@db:5432").decode()) + 5


def test_masker_masks_a_secret_shell_quoted_again() -> None:
    once = shlex.quote(TRICKY)
    for text in (once, shlex.quote(once), shlex.quote(shlex.quote(once))):
        masked = Masker([TRICKY]).mask(text)
        assert "K3y" not in masked and "Pa5" not in masked.replace("p@ss", ""), masked


def test_masker_masks_the_start_of_a_secret_cut_by_a_rendered_value() -> None:
    m = Masker([TRICKY])
    for k in range(1, len(TRICKY)):  # expect's `render` cut the value k characters into the secret
        text = f'stdout is "xxxx{TRICKY[:k]}... (900 characters)'
        assert m.mask(text) == 'stdout is "xxxx***... (900 characters)', k
    innocent = 'stdout is "all good... (900 characters)'
    assert m.mask(innocent) == innocent


def test_masker_keeps_min_secret_length_and_spares_innocent_text() -> None:
    m = Masker(["ab", "tok-12345678"])
    assert m.mask("ab AB") == "ab AB"  # shorter than MIN_SECRET_LENGTH: never masked, nor its forms
    innocent = "deploy v1.2 to prod: 200 OK, token rotated, dG9rLT is not a fragment of length 6+"
    assert m.mask(innocent) == innocent
    assert "tok" not in m.mask("TOK-12345678 dG9rLTEyMzQ1Njc4")


def test_tail_masks_before_it_cuts() -> None:
    m = Masker([TRICKY])
    for at in range(len(TRICKY) + 1):  # the cut at every character of the secret
        text = "a" * 5000 + TRICKY + "b" * (4000 - at)
        kept = m.tail(text, 4000)
        marker, end = kept.split("\n", 1)
        assert marker.startswith("[... ") and len(end) == 4000
        assert set(end) <= {"*", "a", "b"}, (at, end[:40])  # not a character of the secret is left
    assert Masker().tail("x" * 10, 4) == "[... 6 characters truncated ...]\nxxxx"
    assert Masker().tail("short", 4000) == "short"


def test_head_masks_before_it_cuts() -> None:
    m = Masker([TRICKY])
    text = "a" * (2000 - 5) + TRICKY + "b" * 3000
    kept = m.head(text, 2000)
    start, marker = kept.rsplit("\n", 1)
    assert set(start) <= {"*", "a", "b"} and len(start) == 2000 and marker.endswith("characters truncated ...]")
    assert Masker().head("x" * 10, 4) == "xxxx\n[... 6 characters truncated ...]"


# --- rendering ----------------------------------------------------------------------------


def test_render_context() -> None:
    t = templater()
    text = "{{ vars.port }} {{ vars.db.host }} {{ env.HOME }} {{ run.id }} {{ steps.b.path }}"
    assert t.render(text, {"b": {"path": "/tmp/x"}}) == "8080 db1 /home/op r-1 /tmp/x"


def test_keys_win_over_dict_methods() -> None:
    assert templater().render("{{ vars.items }}") == "3"


def test_fast_path_leaves_plain_strings_alone() -> None:
    t = templater()
    for text in ("echo }} {", "awk '{print $1}'", ""):
        assert t.render(text) == text
    assert t._templates == {}  # Jinja was never involved


def test_cache_does_not_bake_in_outputs() -> None:
    t = templater()
    assert t.render("{{ steps.a.n }}", {"a": {"n": 1}}) == "1"
    assert t.render("{{ steps.a.n }}", {"a": {"n": 2}}) == "2"


def test_trailing_newline_is_kept() -> None:
    assert templater().render("echo {{ vars.port }}\n") == "echo 8080\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ vars.prot }}", "undefined name vars.prot"),
        ("{{ vars.db.hots }}", "undefined name vars.db.hots"),
        ("{{ env.NOPE }}", "undefined name env.NOPE (the environment variable NOPE is not set)"),
        ("{{ steps.backup.path }}", "undefined name steps.backup"),
        ("{{ secrets.API_TOKEN }}", "undefined name secrets.API_TOKEN"),
        ("{{ foo }}", "undefined name foo"),
    ],
)
def test_undefined_names_are_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        templater().render(text)
    assert str(info.value).startswith(message)


def test_undefined_output_of_a_known_step() -> None:
    with pytest.raises(TemplateError, match=r"^undefined name steps\.a\.nope$"):
        templater().render("{{ steps.a.nope }}", {"a": {"path": "x"}})


def test_is_defined_still_works() -> None:
    assert templater().render("{{ 'y' if vars.nope is defined else 'n' }}") == "n"


def test_syntax_and_runtime_errors_are_template_errors() -> None:
    t = templater()
    with pytest.raises(TemplateError, match="template syntax error"):
        t.render("{{ vars.port")
    with pytest.raises(TemplateError, match="TypeError"):
        t.render("{{ vars.port + 'a' }}")


def test_shquote_survives_the_shell() -> None:
    nasty = "it's $(rm -rf /) `x` \"q\""
    t = templater(name=nasty)
    for f in ("shquote", "sh"):
        cmd = t.render(f"printf %s {{{{ vars.name | {f} }}}}")
        assert cmd == f"printf %s {shlex.quote(nasty)}"
        assert subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True).stdout == nasty


def test_tojson_does_not_html_escape() -> None:
    assert templater(x={"a": "<&>"}).render("{{ vars.x | tojson }}") == '{"a": "<&>"}'


def test_render_obj() -> None:
    t = templater()
    got = t.render_obj({"a": ["{{ vars.port }}", 1, None], "b": {"c": "{{ run.environment }}"}, "d": True})
    assert got == {"a": ["8080", 1, None], "b": {"c": "prod"}, "d": True}


# --- render_config --------------------------------------------------------------------------


def test_render_config_revalidates() -> None:
    t = templater()
    cfg = t.render_config(TcpSpec.model_validate({"port": "{{ vars.port }}", "host": "{{ vars.db.host }}"}))
    assert isinstance(cfg, TcpSpec) and cfg.port == 8080 and cfg.host == "db1"


def test_render_config_rejects_invalid_results() -> None:
    t = templater(port="not-a-port")
    with pytest.raises(TemplateError, match="the rendered TcpSpec is invalid: port"):
        t.render_config(TcpSpec.model_validate({"port": "{{ vars.port }}"}))


def test_render_config_keeps_aliases_and_nested_structures() -> None:
    cfg = HttpSpec.model_validate({"url": "http://x", "json": {"n": "{{ vars.port }}"}, "method": "POST"})
    out = templater().render_config(cfg)
    assert isinstance(out, HttpSpec) and out.json_body == {"n": "8080"} and out.method == "POST"


def test_render_config_leaves_a_wait_check_for_later() -> None:
    check = Step.model_validate({"http": "{{ steps.deploy.url }}"})
    check._key = "verify[0].wait.check"
    cfg = WaitSpec(check=check, interval=0.5)
    out = templater().render_config(cfg)  # steps.deploy is unknown: it would fail if rendered
    assert isinstance(out, WaitSpec) and out.check is check and out.check.key == "verify[0].wait.check"


def test_render_config_without_a_template_is_the_config_itself() -> None:
    # Nothing to render: the step's own (validated) configuration, not a copy built at every run.
    t = templater()
    plain = RunSpec.model_validate({"command": "echo hi", "env": {"A": "b"}})
    assert t.render_config(plain) is plain and t.render_config(plain) is plain
    # a marker anywhere it would be rendered (a dict value, a list, a nested part rendered with its
    # step) means a rendered copy, every time
    for cfg in (RunSpec.model_validate({"command": "echo hi", "env": {"A": "{{ vars.port }}"}}),
                HttpSpec.model_validate({"url": "http://x", "json": {"ids": ["{{ vars.items }}"]}}),
                MigrateSpec.model_validate({"url": "sqlite://", "django": {"manage": "{{ vars.db.host }}/m.py"}})):
        first, second = t.render_config(cfg), t.render_config(cfg)
        assert first is not cfg and second is not cfg and first == second
    plain_django = MigrateSpec.model_validate({"url": "sqlite://", "django": {"manage": "app/manage.py"}})
    assert t.render_config(plain_django) is plain_django
    # a nested check is rendered when it runs, so its templates do not make its parent rendered
    wait = WaitSpec(check=Step.model_validate({"http": "{{ steps.deploy.url }}"}), interval=0.5)
    assert t.render_config(wait) is wait


def test_render_config_of_shorthand() -> None:
    out = templater().render_config(RunSpec.model_validate("echo {{ vars.port }}"))
    assert isinstance(out, RunSpec) and out.command == "echo 8080" and out.shell == "/bin/sh"


# --- truthy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("vars.port == 8080", True),
        ("vars.port > 9000", False),
        ("{{ run.environment == 'prod' }}", True),
        ("'false'", False),
        ("'No'", False),
        ("env.HOME", True),
        ("steps.a.code == 0", True),
    ],
)
def test_truthy(expr: str, expected: bool) -> None:
    assert templater().truthy(expr, {"a": {"code": 0}}) is expected


def test_truthy_errors() -> None:
    t = templater()
    with pytest.raises(TemplateError, match=r"^undefined name vars\.nope$"):
        t.truthy("vars.nope")
    with pytest.raises(TemplateError, match="expression syntax error"):
        t.truthy("a ===")


# --- plan mode ----------------------------------------------------------------------------


def test_plan_mode_placeholders() -> None:
    t = templater(plan_mode=True)
    text = (
        "{{ steps.backup.path }}|{{ steps.backup.path | shquote }}|{{ env.UNSET }}|"
        "{{ secrets.DB_PASSWORD }}|{{ env.DB_PASSWORD }}|{{ secrets.API_TOKEN }}|{{ vars.port }}"
    )
    assert t.render(text) == (
        "⟨steps.backup.path⟩|'⟨steps.backup.path⟩'|⟨env.UNSET unset⟩|***|***|⟨secret API_TOKEN unset⟩|8080"
    )


def test_plan_mode_still_reports_undefined_vars() -> None:
    with pytest.raises(TemplateError, match=r"^undefined name vars\.nope$"):
        templater(plan_mode=True).render("{{ vars.nope }}")


def test_plan_mode_truthy() -> None:
    t = templater(plan_mode=True)
    assert t.truthy("steps.check.exit_code != 0") is True  # unknown until run time: conditional
    assert t.truthy("vars.port == 1") is False  # known now: evaluated


def test_plan_mode_config_with_run_time_port() -> None:
    cfg = templater(plan_mode=True).render_config(TcpSpec.model_validate({"port": "{{ steps.up.port }}"}))
    assert isinstance(cfg, TcpSpec) and str(cfg.port) == "⟨steps.up.port⟩"


def test_plan_mode_keeps_an_unset_environment_variable_undefined_for_default() -> None:
    t = Templater(vars={"port": 8080}, environ={}, secrets=[], plan_mode=True)
    assert t.render("{{ env.PORT | default(vars.port) }}") == "8080"  # what a run would use
    assert t.render("{{ env.PORT }}") == "⟨env.PORT unset⟩"


# --- the sandbox ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}",
        "{{ cycler | attr('__init__') }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ joiner[vars.a] }}",  # dynamic: only the render can see it
        "{{ lipsum(3) }}",
    ],
)
def test_python_internals_are_out_of_reach(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateError, match=r"unsafe|undefined name lipsum"):
        templater(a="__init__").render(text)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ range(10**9) | list }}", "range() of 1,000,000,000 items is over the limit of 10,000"),
        ("{{ 'x' * 10**9 }}", "'*' would build over 1,000,000 characters (1,000,000,000 items)"),
        ("{{ [0] * 10**8 }}", "'*' would build over 1,000,000 characters (100,000,000 items)"),
        ("{{ ['x' * 999999] * 999999 }}", "'*' would build over 1,000,000 characters (999,999 items)"),
        ("{% set l = ['x' * 999999] %}{{ (l + l) | string }}", "builds a value of over 1,000,000 characters"),
        ("{{ 7 ** 100000 }}", "'**' would build an integer"),
        ("{{ 'x' | center(10**9) }}", "the filter 'center': the number 1,000,000,000 is over the limit"),
        ("{{ 'x'.ljust(10**9) }}", "str.ljust: the number"),
        ("{{ '{:{}}'.format(1, 10**9) }}", "str.format: the number"),
        ("{{ '%1000000000d' % 1 }}", "a format with a width of a million or more"),
        ("{{ '{:1000000000}'.format(1) }}", "str.format: a format with a width"),
        ("{{ ('x' * 900000).replace('x', 'yy') }}", "str.replace would build over 1,000,000 characters"),
        ("{{ ('x' * 900000) | wordwrap(1) }}", "the filter 'wordwrap' takes at most"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
         "builds a value of over 1,000,000 characters"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "too much work"),
        ("{% set x %}{% for i in range(10000) %}{{ 'x' * 900000 }}{% endfor %}{% endset %}",
         "writes over 1,000,000 characters"),
        ("{% for i in range(10000) %}" + "y" * 1000 + "{% endfor %}", "writes over 1,000,000 characters"),
        ("{{ ('\\n' * 500000) | indent(999999) }}", "the filter 'indent' would build over 1,000,000 characters"),
        ("{{ ('\\t' * 999999).expandtabs(999999) }}", "str.expandtabs would build over"),
        ("{{ ('a' * 999999).translate({97: 'x' * 999999}) }}", "str.translate would build over"),
        ("{{ ('{0}' * 300000).format('x' * 999999) }}", "str.format would build over"),
        ("{{ ('%(a)s' * 200000) % {'a': 'x' * 999999} }}", "'%' would build over"),
        ("{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError|too much work"),
    ],
)
def test_bombs_fail_fast_with_a_clear_message(text: str, message: str) -> None:
    import re
    import time

    # CPU time of this thread (the render runs in it), not the wall clock: the claim is that a bomb is
    # stopped before it does real work, and a busy machine (parallel tests) stretches the wall clock.
    start = time.thread_time()
    with pytest.raises(TemplateError) as info:
        templater().render(text)
    assert time.thread_time() - start < 0.5
    assert re.search(message if "|" in message else re.escape(message), str(info.value))


def test_a_when_expression_is_sandboxed_too() -> None:
    with pytest.raises(TemplateError, match="range"):
        templater().truthy("range(10**9) | list | length > 0")
    with pytest.raises(TemplateError, match="unsafe"):
        templater().truthy("cycler.__init__.__globals__")


def test_ordinary_templates_still_work() -> None:
    t = templater(hosts=["a", "b"], name="it's")
    text = (
        "{{ vars.name | shquote }} {{ vars.hosts | tojson }} {{ env.NOPE | default('d') }} "
        "{{ range(3) | join(',') }} {{ '%05d' | format(vars.port) }} {{ '{}-{}'.format(1, 2) }} "
        "{{ vars.db.host.upper() }} {{ vars.hosts | map('upper') | join }} "
        "{% for h in vars.hosts %}[{{ loop.index }}{{ h }}{{ ',' if not loop.last }}]{% endfor %} "
        "{{ 'x' * 3 }} {{ 2 ** 10 }} {{ vars.port + 1 }} {{ 'a' ~ vars.port }} {{ (7 // 2) ~ (7 % 2) }} "
        "{{ '{}'.format(1700000000) }} {{ '%d' % 1700000000 }} {{ dict(ts=1700000000).ts }}"
    )
    assert t.render(text) == (
        "'it'\"'\"'s' [\"a\", \"b\"] d 0,1,2 08080 1-2 DB1 AB [1a,][2b] xxx 1024 8081 a8080 31 "
        "1700000000 1700000000 1700000000"
    )
    assert t.truthy("vars.hosts | length == 2 and 'a' in vars.hosts")


def test_a_template_cannot_change_what_the_next_one_sees() -> None:
    t = templater(hosts=["a"])
    for text in ("{{ vars.hosts.append('b') }}", "{{ vars.update({'port': 1}) }}", "{{ vars.db.clear() }}"):
        with pytest.raises(TemplateError, match="is unsafe"):
            t.render(text)
    assert t.render("{{ vars.hosts }} {{ vars.port }} {{ vars.db.host }}") == "['a'] 8080 db1"


def test_random_combinations_of_amplifiers_stay_within_the_limits() -> None:
    """A seeded fuzz: nest amplifying operations at random; every rendering ends fast, either with
    a TemplateError or with text under the size limit, never with another exception."""
    import random
    import time

    from tminus.templating.sandbox import MAX_SIZE

    rng = random.Random(9)
    seeds = ["'x'", "'ab' * 999", "range(5000) | list", "vars.db", "'{0}%s\\t\\n'", "[vars.port] * 3"]
    wrappers = [
        "({0}) * 999", "({0}) ~ ({0})", "({0}) | string", "({0}) | join(({0}) | string)",
        "({0}) | string | replace('x', ({0}) | string)", "(({0}) | string).center(999999)",
        "({0}) | string | indent(99999)", "(({0}) | string).format(({0}) | string)",
        "({0}) | tojson", "({0}) | list", "(({0}) | string) % (({0}) | string)",
        "(({0}) | string).expandtabs(9999)", "({0}) | batch(3) | list", "({0}) | map('string') | join",
    ]
    t = templater()
    for _ in range(200):
        expr = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            expr = rng.choice(wrappers).format(expr)
        loop = rng.random() < 0.3
        text = f"{{% for i in range(99) %}}{{{{ {expr} }}}}{{% endfor %}}" if loop else f"{{{{ {expr} }}}}"
        start = time.thread_time()  # CPU time, as above
        try:
            out = t.render(text)
        except TemplateError:
            pass
        else:
            assert len(out) <= MAX_SIZE, text
        assert time.thread_time() - start < 1.5, text
