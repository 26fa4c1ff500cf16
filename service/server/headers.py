"""Security headers on every response: what a browser may do with what this service sends.

The service answers JSON, images it was sent (never), and, with the web page, its own HTML and
scripts. None of it should be sniffed into another type, framed by another site, or allowed to
load anything from elsewhere, so every response carries the same small set of headers. A route
that sets one of them itself keeps its own value.
"""

from __future__ import annotations

import ipaddress
import json

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web import CONTENT_SECURITY_POLICY

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Add `SECURITY_HEADERS` to every HTTP response that does not already set them."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS if headers is None else headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
"""Content types a cross-site HTML form (or a `fetch` without a preflight) can send."""


class HostAndOriginMiddleware:
    """Refuse requests for another host name, and browser posts from another site (400 / 403).

    DNS rebinding: a page on attacker.example whose name is made to resolve to this service reads
    `/models` and `/metrics` as same-origin; its requests carry `Host: attacker.example`, so an
    allow-list of host names (`allowed_hosts`) stops them. IP-literal hosts pass: a rebinding page
    can only send a name, and probes and in-cluster clients often use the pod's address.

    Cross-site forms: a form on any site can POST multipart data to `/predict` without a CORS
    preflight (a "simple" request); the answer is unreadable to it, but the work is done. A form-type
    POST whose `Origin` is neither this host nor one of `cors_origins`, or that the browser marks
    `Sec-Fetch-Site: cross-site`, is refused. Clients that are not browsers send neither header.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: list[str] | None = None,
                 allowed_origins: list[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts or ())
        self.allowed_origins = frozenset(origin.lower().rstrip("/") for origin in allowed_origins or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if self.allowed_hosts and not _host_allowed(host, self.allowed_hosts):
            await _refuse(send, 400, f"unknown host {host[:64]!r}: this service answers to "
                                     f"{', '.join(sorted(self.allowed_hosts))} (DIGITS_ALLOWED_HOSTS)")
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and _is_form(headers) and self._cross_site(headers, host, scope):
            await _refuse(send, 403, "cross-site requests are refused: call the API from this site's own pages, "
                                     "from an origin in DIGITS_CORS_ORIGINS, or from outside a browser")
            return
        await self.app(scope, receive, send)

    def _cross_site(self, headers: Headers, host: str, scope: Scope) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.lower().rstrip("/")
            if "*" in self.allowed_origins or origin in self.allowed_origins:
                return False
            scheme = scope.get("scheme", "http")
            return origin != f"{scheme}://{host}" and origin.split("://", 1)[-1] != host
        return headers.get("sec-fetch-site") == "cross-site"


def _is_form(headers: Headers) -> bool:
    """Whether the body's type is one a browser sends cross-site without asking first (no preflight):
    any other type reaches the service only after CORS allowed it, or from outside a browser."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower() in FORM_TYPES


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name in allowed or host in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
