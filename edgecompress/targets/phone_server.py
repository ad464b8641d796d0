"""The phone's line to the host: a small HTTP server that serves one page and this run's files.

Every URL starts with a random token; a request without it gets 403 and nothing else, so only
the browser that was shown the link (or its QR code) can load the page, the artifacts or the
evaluation images. The first page that says hello owns the run; a second browser is told the
run is taken until the first has said goodbye or been silent for `LEASE_S`. The page asks for
work (`/job`, long-polled), fetches the model and inputs of that job, reports progress (which
also shows it is alive) and posts its raw results, which the target checks.

Responses carry COOP/COEP headers, so a page opened from a secure context (localhost through
`adb reverse`, or HTTPS with `--tls-cert/--tls-key`) is cross-origin isolated and may run
WebAssembly threads.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edgecompress.resources import bundled_dir

#: a page that has neither polled nor reported for this long is gone (closed, asleep, out of range)
LEASE_S = 20.0
#: how long one /job request is held open when there is no work
POLL_S = 5.0
#: the largest body a page may post (raw outputs of a large evaluation set)
MAX_BODY = 256 * 1024 * 1024
#: on every answer: never cached, cross-origin isolated (WebAssembly threads), nothing sent elsewhere
HEADERS = (
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html"}


@dataclass
class Work:
    """One artifact for the page: what it may fetch, and the answer once it comes."""

    id: str
    spec: dict[str, Any]  # sent to the page as is
    files: dict[str, Path | bytes]  # name -> file or bytes the page fetches under /job/<id>/<name>
    answer: Any = None
    taken: bool = False


@dataclass
class Link:
    """What the page and the target share, guarded by one condition variable."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    owner: str | None = None
    device: dict[str, Any] | None = None
    last_seen: float = 0.0
    gone: str | None = None  # why the owning page left ('closed', ...), until another takes over
    work: Work | None = None
    progress: Callable[[str], None] | None = None
    refused: int = 0  # second browsers told the run is taken
    cond: threading.Condition = field(default_factory=threading.Condition)

    def alive(self) -> bool:
        return self.owner is not None and self.gone is None and time.monotonic() - self.last_seen < LEASE_S

    def touch(self, session: str | None) -> bool:
        """Note that the owner is alive; False when `session` is not the owner."""
        with self.cond:
            if session is None or session != self.owner:
                return False
            self.last_seen = time.monotonic()
            self.cond.notify_all()
            return True

    def hello(self, device: dict[str, Any]) -> str | None:
        """Make the caller the owner (a new session id), unless a live page owns the run."""
        with self.cond:
            if self.alive():
                self.refused += 1
                return None
            self.owner, self.device, self.gone = secrets.token_urlsafe(12), device, None
            self.last_seen = time.monotonic()
            if self.work is not None and self.work.taken and self.work.answer is None:
                self.work.taken = False  # the page that had it left; the new one starts it again
            self.cond.notify_all()
            return self.owner

    def bye(self, session: str | None, why: str) -> None:
        with self.cond:
            if session is not None and session == self.owner:
                self.gone = why
                self.cond.notify_all()


class PhoneServer:
    """ThreadingHTTPServer in a daemon thread, serving the page, its assets and the link's work."""

    def __init__(self, link: Link, assets: Path, host: str, port: int, tls: tuple[Path, Path] | None) -> None:
        self.link, self.assets = link, assets.resolve()
        self.page = (bundled_dir("firmware") / "phone").resolve()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="edgecompress-phone", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # ------------------------------------------------------------------ what each path answers

    def get(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path in ("", "index.html"):
            return 200, self.page / "index.html"
        if path == "page.js":
            return 200, self.page / "page.js"
        if path.startswith("assets/"):
            return _inside(self.assets, path.removeprefix("assets/"))
        if path == "job":
            return self._next_job(query.get("session"))
        if path.startswith("job/"):
            return self._job_file(path, query.get("session"))
        return 404, {"error": "no such page"}

    def post(self, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        link, session = self.link, query.get("session")
        if path == "hello":
            owner = link.hello(body if isinstance(body, dict) else {})
            if owner is None:
                return 409, {
                    "taken": "This run is taken: another browser is running its measurement. Close that one first."
                }
            return 200, {"session": owner}
        if path == "bye":
            link.bye(session, "the page was closed")
            return 200, {}
        if not link.touch(session):
            return 409, {"taken": "This page no longer owns the run; reload it."}
        if path == "progress":
            message = body.get("message") if isinstance(body, dict) else None
            if isinstance(message, str) and link.progress is not None:
                from edgecompress.targets.phone_results import text

                link.progress(f"phone: {text(message, 200)}")
            return 200, {}
        if path.startswith("result/"):
            with link.cond:
                work = link.work
                if work is None or work.id != path.removeprefix("result/"):
                    return 409, {"error": "no such job"}
                work.answer = body if body is not None else {"error": "the page posted no JSON"}
                link.cond.notify_all()
            return 200, {}
        return 404, {"error": "no such page"}

    def _next_job(self, session: str | None) -> tuple[int, Any]:
        link, deadline = self.link, time.monotonic() + POLL_S
        with link.cond:
            while True:
                if session is None or session != link.owner:
                    return 409, {"taken": "This page no longer owns the run; reload it."}
                link.last_seen = time.monotonic()
                work = link.work
                if work is not None and not work.taken and work.answer is None:
                    work.taken = True
                    return 200, {"job": {"id": work.id, **work.spec}}
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return 200, {"job": None}
                link.cond.wait(remaining)

    def _job_file(self, path: str, session: str | None) -> tuple[int, Any]:
        if not self.link.touch(session):
            return 409, {"taken": "This page no longer owns the run; reload it."}
        _, job_id, name = (path.split("/", 2) + ["", ""])[:3]
        work = self.link.work
        if work is None or work.id != job_id or name not in work.files:
            return 404, {"error": "no such file"}
        return 200, work.files[name]


def _inside(root: Path, relative: str) -> tuple[int, Any]:
    """A file under `root` only: '..', absolute paths and links out of it are not served."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return 404, {"error": "no such file"}
    return 200, candidate


def _body(status: int, payload: Any) -> tuple[bytes, str]:
    """(bytes, content type) of an answer: a file, raw bytes, JSON, or the status phrase alone."""
    if isinstance(payload, Path):
        kind = _TYPES.get(payload.suffix) or mimetypes.guess_type(payload.name)[0] or "application/octet-stream"
        return payload.read_bytes(), kind
    if isinstance(payload, bytes):
        return payload, "application/octet-stream"
    if payload is None:
        return (HTTPStatus(status).phrase + "\n").encode(), "text/plain"
    return json.dumps(payload).encode(), "application/json"


def _handler(server: PhoneServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            route = self._route()
            if route is not None:
                self._send(*server.get(*route))

        def do_POST(self) -> None:  # noqa: N802
            route = self._route()
            if route is None:
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "too large"})
                return
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except (ValueError, RecursionError):
                body = None
            self._send(*server.post(*route, body))

        def _route(self) -> tuple[str, dict[str, str]] | None:
            """(path after the token, query); None after answering 403 when the token is wrong."""
            parts = urlsplit(self.path)
            prefix = f"/{server.link.token}/"
            if not secrets.compare_digest(parts.path[: len(prefix)].encode(), prefix.encode()):
                self._send(403, None)
                return None
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            return parts.path[len(prefix) :], query

        def _send(self, status: int, payload: Any) -> None:
            body, kind = _body(status, payload)
            self.send_response(status)
            for name, value in (("Content-Type", kind), ("Content-Length", str(len(body))), *HEADERS):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            """Requests are not echoed to the terminal (they would carry the token)."""

    return Handler


__all__ = ["LEASE_S", "Link", "PhoneServer", "Work"]
