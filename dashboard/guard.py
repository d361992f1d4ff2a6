"""The HTTP boundary shared by the station's dashboard and the clinic hub: a pure-ASGI
middleware that refuses what no route should ever see, before a route (or the login check)
spends anything on it.

- **Body size**: a declared ``Content-Length`` above the limit is refused at once (413); a
  body without one is counted while it streams and cut off at the limit (413), so an
  attacker's 200 MB never reaches memory.
- **Content type**: a write (POST, PUT, PATCH, DELETE) with a body must say
  ``application/json`` (or, on an upload route, that route's own type): 415. A cross-origin
  form or ``text/plain`` post can therefore never reach a route.
- **Host**: the ``Host`` header must name this server (loopback names, and the LAN address
  and host name when serving the LAN): 421 otherwise, which stops DNS rebinding.
- **Headers**: every answer carries a Content-Security-Policy (``frame-ancestors 'none'``),
  ``Referrer-Policy: no-referrer`` (a pairing token in a URL never leaks by Referer),
  ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.

Refusals are small JSON answers ``{"detail": ...}`` like the routes' own errors.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""The largest JSON body any route takes (uploads name their own limit)."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)


@dataclass(frozen=True)
class Upload:
    """A route that takes a body other than JSON: its media types and its own size limit."""

    media_types: frozenset[str]
    max_bytes: int


@dataclass(frozen=True)
class Policy:
    """What the boundary lets through."""

    hosts: frozenset[str] = LOOPBACK_HOSTS
    max_body_bytes: int = MAX_BODY_BYTES
    uploads: Mapping[str, Upload] = field(default_factory=dict)
    """Path -> upload rules, for routes whose body is not JSON."""


def host_name(header: str) -> str:
    """The name in a Host header, without the port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names and any others this server answers to (LAN address, host name)."""
    return LOOPBACK_HOSTS | {h.lower() for h in extra if h and h not in ("0.0.0.0", "::")}


class Boundary:
    """The pure-ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy
        self.refused: Counter[int] = Counter()
        """Requests refused here, by status (413, 415, 421, 400)."""

    def _count(self, status: int, why: str) -> None:
        """Count a refusal; log the 1st, 10th, 100th... of each kind (a flood is not a log)."""
        self.refused[status] += 1
        n = self.refused[status]
        if n == 10 ** (len(str(n)) - 1):
            log.warning("refused with %d (%d so far): %s", status, n, why)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            status, detail = refusal
            self._count(status, detail)
            await _answer(send_with_headers, status, detail)
            return
        limit = self._limit(scope)
        received = 0
        started = False
        refused = False

        async def counted_receive() -> Message:
            # Past the limit the client is answered 413 at once and the route sees the client
            # gone: it never holds more than the limit (FastAPI turns an exception raised
            # here into a 400 of its own, so none is raised).
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    self._count(413, "a streamed body passed the limit")
                    if not started:
                        await _answer(
                            send_with_headers, 413, f"the body is larger than {limit} bytes"
                        )
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out: whatever the route says now is dropped
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        await self.app(scope, counted_receive, tracking_send)

    def _limit(self, scope: Scope) -> int:
        upload = self.policy.uploads.get(scope["path"])
        return self.policy.max_body_bytes if upload is None else upload.max_bytes

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if host not in self.policy.hosts:
            return 421, f"this server does not answer to that Host ({host[:80]!r})"
        declared = headers.get("content-length")
        limit = self._limit(scope)
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()) or len(declared) > 15:
                return 400, "a bad Content-Length"
            if int(declared) > limit:
                return 413, f"the body is larger than {limit} bytes"
        if scope["method"] in WRITES and (
            declared not in (None, "0") or "transfer-encoding" in headers
        ):
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            upload = self.policy.uploads.get(scope["path"])
            allowed = {"application/json"} if upload is None else upload.media_types
            if media not in allowed:
                return 415, f"send the body as {' or '.join(sorted(allowed))}"
        return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- typed bodies and safe validation errors -------------------------------------------------

MAX_ID = 2**53
"""The largest integer a path or query takes (a JSON-safe integer; SQLite's own is larger)."""


def _unicode_ok(value: object, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(
            _unicode_ok(k, depth + 1) and _unicode_ok(v, depth + 1) for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_unicode_ok(v, depth + 1) for v in value)
    return True


class StrictBody(BaseModel):
    """The base of every JSON body: unknown keys, NaN and infinities, and text that is not
    valid Unicode (a lone surrogate such as ``\\ud800``) are refused (422), so nothing the
    store or a JSON answer cannot hold gets past the boundary."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if not _unicode_ok(data):
            raise ValueError("text must be valid Unicode, nested at most 32 deep")
        return data


def safe_text(value: object, limit: int = 80) -> str | int:
    """A value that is safe to put in a JSON answer: small integers stay, everything else
    becomes short text with any unencodable character escaped."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_ID:
        return value
    text = value if isinstance(value, str) else type(value).__name__
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 with where and what, never the input itself (it may be NaN, 1e400, a lone
    surrogate or megabytes)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [safe_text(p) for p in err.get("loc", ())],
            "msg": safe_text(str(err.get("msg", "invalid")), 200),
            "type": safe_text(str(err.get("type", "invalid"))),
        }
        for err in exc.errors()[:20]
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def harden(app: FastAPI, policy: Policy, login: Any) -> None:
    """Put an application behind the boundary: the middleware, the safe validation errors,
    and the OpenAPI description and its pages behind ``login`` (a FastAPI dependency).
    Create the app with ``docs_url=None, redoc_url=None, openapi_url=None``."""
    app.add_middleware(Boundary, policy=policy)
    app.add_exception_handler(RequestValidationError, validation_error)
    title = app.title

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Any = Depends(login)) -> JSONResponse:  # noqa: B008
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(_: Any = Depends(login)) -> HTMLResponse:  # noqa: B008
        return get_swagger_ui_html(openapi_url="/openapi.json", title=title)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(_: Any = Depends(login)) -> HTMLResponse:  # noqa: B008
        return get_redoc_html(openapi_url="/openapi.json", title=title)
