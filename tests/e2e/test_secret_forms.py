"""A secret's derived forms never reach the ledger, `show`, `why` or the terminal: real `tminus run`
subprocesses print the secret URL-encoded, upper-cased, base64-encoded (alone and inside a stream, at
each offset), JSON-escaped, shell-quoted and split across lines, and a secret sits at the 4,000
character cut of a long output."""

from __future__ import annotations

import base64
import json
import shlex
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

from tests.helpers import tminus, write_runbook

SECRET = "Pa55 w/rd+K3y:'q!é"  # needs URL, shell and JSON escaping; non-ASCII for \\u escapes

# Prints every derived form of $DB_PASSWORD, one a line (and a few inside longer text).
PRINTER = r"""
import base64, json, os, shlex, urllib.parse as u
s = os.environ["DB_PASSWORD"]
b = s.encode()
for form in (u.quote(s), u.quote(s, safe=""), u.quote_plus(s), u.quote(s).lower(), s.upper(), s.lower(),
             base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode(),
             json.dumps(s), json.dumps(s, ensure_ascii=False), shlex.quote(s)):
    print("form:", form)
for prefix in (b"", b"u", b"us", b"user:"):  # the secret at offsets 0, 1, 2 (and 5) of a stream
    print("stream:", base64.b64encode(prefix + b + b"@host").decode())
    print("stream:", base64.urlsafe_b64encode(prefix + b + b"\n").decode())
print("postgresql://app:" + u.quote(s, safe="") + "@db:5432/app")
print("\n".join(s[i:i + 4] for i in range(0, len(s), 4)))  # split across lines
"""


def _forms() -> list[str]:
    b = SECRET.encode()
    forms = [SECRET, quote(SECRET), quote(SECRET, safe=""), quote_plus(SECRET), SECRET.upper(), SECRET.lower(),
             base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode(),
             json.dumps(SECRET)[1:-1], shlex.quote(SECRET), SECRET[len(SECRET) // 2:], SECRET[:6]]
    # the part of each base64 stream that the secret alone determines, at each offset
    for prefix in (b"", b"u", b"us", b"user:"):
        full = base64.b64encode(prefix + b + b"@host").decode()
        start = (len(prefix) // 3 + (1 if len(prefix) % 3 else 0)) * 4
        forms.append(full[start:start + 12])
    return forms


def _leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode()
    return [f for f in _forms() if f.encode() in data]


def _run(tmp_path: Path, runbook: str) -> tuple[str, str]:
    write_runbook(tmp_path, runbook)
    (tmp_path / "printer.py").write_text(PRINTER)
    env = {"DB_PASSWORD": SECRET}
    proc = tminus("run", "runbook.yaml", cwd=tmp_path, env=env)
    assert proc.returncode == 11, proc.stdout + proc.stderr  # the failing step rolls the run back
    listed = tminus("history", "--json", cwd=tmp_path, env=env)
    run_id = json.loads(listed.stdout)[0]["id"]
    return run_id, proc.stdout + proc.stderr


def _assert_nowhere(tmp_path: Path, run_id: str, terminal: str) -> None:
    assert not _leaks(terminal), terminal
    for args in (("show", run_id, "--evidence"), ("show", run_id, "--json"), ("why", run_id, "--json"),
                 ("why", run_id)):
        shown = tminus(*args, cwd=tmp_path)
        assert shown.returncode in (0, 1), shown.stderr
        assert not _leaks(shown.stdout + shown.stderr), (args, _leaks(shown.stdout + shown.stderr))
    raw = b"".join(p.read_bytes() for p in tmp_path.glob(".tminus/ledger.db*"))
    assert raw and not _leaks(raw), _leaks(raw)


def test_derived_forms_of_a_secret_are_masked_everywhere(tmp_path: Path) -> None:
    run_id, terminal = _run(tmp_path, f"""
        name: secret-forms
        secrets: [DB_PASSWORD]
        phases:
          - name: use
            steps:
              - name: templated forms
                run: >-
                  echo postgresql://app:{{{{ secrets.DB_PASSWORD | urlencode }}}}@db/app
                  {{{{ secrets.DB_PASSWORD | upper | shquote }}}} {{{{ secrets.DB_PASSWORD | tojson | shquote }}}}
                  {{{{ secrets.DB_PASSWORD | shquote | shquote }}}}
              - name: printed forms
                run: "{sys.executable} printer.py"
              - name: fails showing them
                run: "{sys.executable} printer.py; {sys.executable} printer.py >&2; exit 1"
    """)
    shown = tminus("show", run_id, "--evidence", cwd=tmp_path).stdout
    assert "***" in shown and "form:" in shown  # the output is there, its secrets masked
    _assert_nowhere(tmp_path, run_id, terminal)


def test_a_secret_at_the_cut_of_a_long_output_is_not_half_shown(tmp_path: Path) -> None:
    # 4,000 characters are kept: the cut falls in the middle of the secret.
    after = 4000 - len(SECRET) // 2
    run_id, terminal = _run(tmp_path, f"""
        name: secret-cut
        secrets: [DB_PASSWORD]
        phases:
          - name: use
            steps:
              - name: long output
                run: "printf '%05000d' 0; printf %s \\"$DB_PASSWORD\\"; printf '%0{after}d' 0; exit 1"
    """)
    evidence = tminus("show", run_id, "--json", cwd=tmp_path).stdout
    assert "characters truncated" in evidence
    _assert_nowhere(tmp_path, run_id, terminal)


def test_a_secret_at_the_cut_of_a_failed_verdicts_value_is_not_half_shown(tmp_path: Path) -> None:
    # A failed expectation shows the actual value cut to 200 (message) and 500 (verdict) characters.
    for before in (200 - 6, 500 - 6 - 2):  # the JSON rendering adds a quote
        case = tmp_path / str(before)
        case.mkdir()
        run_id, terminal = _run(case, f"""
            name: secret-verdict
            secrets: [DB_PASSWORD]
            phases:
              - name: use
                steps:
                  - name: long output
                    run: "printf '%0{before}d' 0; printf %s \\"$DB_PASSWORD\\"; printf '%0600d' 0"
                    expect: ['stdout contains "never there"']
        """)
        _assert_nowhere(case, run_id, terminal)
        shown = tminus("show", run_id, "--json", cwd=case).stdout
        assert "characters)" in shown  # the value was cut where the secret is


def test_a_secret_at_the_cut_of_a_file_match_line_is_not_half_shown(tmp_path: Path) -> None:
    # A matching line is listed cut to 200 characters: the cut falls in the middle of the secret.
    line = "forbidden " + "x" * (200 - len("forbidden ") - len(SECRET) // 2) + SECRET + "y" * 50
    (tmp_path / "settings.txt").write_text(f"ok\n{line}\n", encoding="utf-8")
    run_id, terminal = _run(tmp_path, """
        name: secret-file-line
        secrets: [DB_PASSWORD]
        phases:
          - name: use
            steps:
              - name: no forbidden setting
                file: {path: settings.txt, not_contains: forbidden}
    """)
    shown = tminus("show", run_id, "--json", cwd=tmp_path).stdout
    assert "settings.txt:2: forbidden" in shown  # the line is listed
    _assert_nowhere(tmp_path, run_id, terminal)


def test_a_secret_at_the_cut_of_a_monitor_samples_body_is_not_half_shown(tmp_path: Path) -> None:
    # A probe's text body is kept to 2,000 characters in its sample: the cut is in the secret.
    body = ("z" * (2000 - len(SECRET) // 2) + SECRET + "z" * 100).encode()
    server = _serve(body)
    try:
        port = server.server_address[1]
        run_id, terminal = _run(tmp_path, f"""
            name: secret-sample
            secrets: [DB_PASSWORD]
            phases:
              - name: use
                steps:
                  - name: ship
                    run: "true"
            decision: auto
            monitor:
              duration: 1s
              interval: 200ms
              probes:
                - name: page
                  http: {{url: "http://127.0.0.1:{port}/"}}
              rules:
                - name: leaked
                  when: 'body contains "zzz"'
                  consecutive: 1
                  action: rollback
        """)
    finally:
        server.shutdown()
    shown = tminus("show", run_id, "--json", cwd=tmp_path).stdout
    assert "zzzz" in shown  # the samples' bodies were recorded
    _assert_nowhere(tmp_path, run_id, terminal)


def _serve(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
