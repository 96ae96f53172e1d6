"""A bounded, steady HTTP load through a proxy: a few threads, each on its own keep-alive connection,
recording every answer (when, status, which release served it, Retry-After) or its failure.

A request sent on a reused keep-alive connection that the server closed before answering (nginx's
old workers close idle connections when a reload retires them) is sent again once on a new
connection, as browsers and urllib3 do for idempotent requests; such retries are counted apart.
Anything else (a refused connection, a reset after the request, a timeout, a 502) is a failure.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Answer:
    at: float  # time.time() when the answer arrived (comparable with the ledger's timestamps)
    status: int | None  # None: the request failed
    release: str | None = None
    retry_after: str | None = None
    error: str | None = None
    sent: float = 0.0  # time.time() when the request was first sent


@dataclass
class Load:
    host: str
    port: int
    path: str = "/"
    threads: int = 4
    total: int | None = None  # stop after this many requests (all threads together); None: until stop()
    answers: list[Answer] = field(default_factory=list)
    retries: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]

    def start(self) -> Load:
        for w in self._workers:
            w.start()
        return self

    def wait(self, count: int, timeout: float = 60.0) -> None:
        """Until at least `count` answers arrived (bounded)."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.answers)} of {count} answers within {timeout}s")
            time.sleep(0.005)

    def stop(self) -> Load:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=30)
        return self

    def join(self, timeout: float = 120.0) -> Load:
        for w in self._workers:
            w.join(timeout=timeout)
        return self

    @property
    def errors(self) -> list[Answer]:
        """Requests that got no answer at all (a connection error, a timeout)."""
        return [a for a in self.answers if a.status is None]

    def not_ok(self) -> list[Answer]:
        """Requests not answered 200 (a connection error, a 502 or any other status)."""
        return [a for a in self.answers if a.status != 200]

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set() or (self.total is not None and self._sent >= self.total):
                return False
            self._sent += 1
            return True

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        used = False
        while self._take():
            sent = time.time()
            for attempt in (1, 2):
                if conn is None:
                    conn, used = http.client.HTTPConnection(self.host, self.port, timeout=10), False
                try:
                    conn.request("GET", self.path)
                    response = conn.getresponse()
                    body = response.read()
                    answer = Answer(time.time(), response.status, response.getheader("X-Release"),
                                    response.getheader("Retry-After"))
                    if answer.release is None and response.status == 200:
                        answer.release = body.decode(errors="replace")
                    used = True
                    if response.will_close:
                        conn.close()
                        conn = None
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                    conn.close()
                    conn = None
                    if used and attempt == 1:  # a stale keep-alive connection: once more, on a new one
                        with self._lock:
                            self.retries += 1
                        continue
                    answer = Answer(time.time(), None, error=f"{type(exc).__name__}: {exc}")
                    break
                except OSError as exc:
                    conn.close()
                    conn = None
                    answer = Answer(time.time(), None, error=f"{type(exc).__name__}: {exc}")
                    break
            answer.sent = sent
            with self._lock:
                self.answers.append(answer)
        if conn is not None:
            conn.close()
