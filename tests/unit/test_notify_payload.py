"""Pure parts of webhook delivery: how a URL is shown and how Retry-After is read."""

from __future__ import annotations

import pytest

from tminus.notify import RETRY_AFTER_CAP, _retry_after, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/***"),
        ("https://user:pa55word@example.com:8443/hook?token=abc", "https://example.com:8443/***"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/***"),
        ("http://[::1]:9000/x", "http://[::1]:9000/***"),
        ("not a url /secret", "***"),
        ("{{ env.HOOK }}", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("0", 0.0), ("2.5", 2.5), (" 7 ", 7.0), ("-3", 0.0), ("3600", RETRY_AFTER_CAP),
     ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("soon", None)],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert _retry_after(header) == seconds
