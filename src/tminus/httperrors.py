"""How an HTTP transport error reads to an operator: shared by the `http` kinds and notifications.

Below both: kinds never import notify, and notify never reaches into a kind.
"""

from __future__ import annotations


def describe_transport_error(exc: Exception) -> str:
    """The root cause of an httpx error, e.g. 'connection refused ([Errno 111] Connection refused); ...'."""
    import httpx  # lazy: start-up stays light

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text.lower():
            return f"connection refused ({text}); is the service listening?"
        return f"could not connect ({text})"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"invalid URL ({text}); expected http(s)://host[:port]/path"
    return f"{type(exc).__name__}: {text}"
