"""One door in front of every route of the dashboard's Tornado app, Panel's and Bokeh's included.

``guard_routes(app, gate)`` replaces each route's handler class by a subclass that

* verifies any token the request presents through the LoginGate (rate-limited, off the IOLoop)
  and trades a page's ``?token=`` for the cookie and a clean URL;
* refuses anonymous requests unless the route is listed in ``PUBLIC`` (harmless without login)
  or ``SELF_GUARDED`` (it checks the login itself): a route a Panel or Bokeh upgrade adds needs
  the login until someone reviews it and lists it;
* turns a ``SystemExit`` (or any other BaseException) raised inside it into a 500, so no
  request can stop the IOLoop;
* logs its URL with tokens redacted and never the request's headers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from panel.io.server import ComponentResourceHandler
from tornado.log import access_log, app_log
from tornado.routing import Router, Rule
from tornado.web import Application, HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler

from monitorkit.dashboard.gate import LoginGate

log = logging.getLogger(__name__)

PUBLIC: dict[str, str] = {  # handler class -> why it is harmless without login
    "monitorkit.dashboard.login.LoginHandler": "the login form; tokens it checks go through the rate-limited gate",
    "monitorkit.dashboard.login.LogoutHandler": "only clears the login cookie",
    "bokeh.server.views.ico_handler.IcoHandler": "the favicon bytes",
}
SELF_GUARDED: dict[str, str] = {  # handler class -> how it checks the login itself
    "panel.io.server.DocHandler": "Bokeh's @authenticated: redirects to the login page",
    "panel.io.server.RootHandler": "Bokeh's @authenticated: redirects to the login page",
    "bokeh.server.views.metadata_handler.MetadataHandler": "Bokeh's @authenticated: redirects to the login page",
    "panel.io.server.WSHandler": "403 without login; the Origin must be one of the server's",
    "monitorkit.dashboard.http.HealthzHandler": "login or Bearer, except on loopback or with serve.public_metrics",
    "monitorkit.dashboard.http.MetricsHandler": "login or Bearer, except on loopback or with serve.public_metrics",
}
OWN_KEY: dict[str, str] = {  # handler class -> the credential it takes instead of the login token
    "monitorkit.dashboard.http.LayoutsApiHandler": "the API key from the owner's 0600 sidecar",
}
COMPONENT_PACKAGES = ("panel", "bokeh")
VERBS = ("get", "head", "post", "put", "delete", "patch", "options")
SECRET_ARGS = re.compile(r"(?i)([?&](?:token|access_token|api_key)=)[^&#]*")


def redact(uri: str) -> str:
    """Return ``uri`` with the values of token-like query arguments replaced: ``/?token=[redacted]``."""
    return SECRET_ARGS.sub(r"\1[redacted]", uri)


def summary(handler: RequestHandler) -> str:
    """Return "METHOD uri (client)" of a request, tokens redacted."""
    request = handler.request
    return f"{request.method} {redact(request.uri or '')} ({request.remote_ip})"


def log_request(handler: RequestHandler) -> None:
    """Log one finished request as Tornado does, with tokens redacted (the app's ``log_function``)."""
    status = handler.get_status()
    method = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    method("%d %s %.2fms", status, summary(handler), 1000.0 * handler.request.request_time())


def qualified(cls: type) -> str:
    """Return ``module.Class`` of ``cls``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def policy_of(cls: type) -> tuple[str, str]:
    """Return the door policy of a handler class ("public", "self", "key" or "login") and why."""
    name = qualified(cls)
    for policy, table in (("public", PUBLIC), ("self", SELF_GUARDED), ("key", OWN_KEY)):
        if name in table:
            return policy, table[name]
    return "login", "not reviewed: the login is required"


async def _contained(handler: RequestHandler, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        result = call(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:  # SystemExit & co. would stop the IOLoop for every client
        app_log.error("%s raised %s in %s; answered 500", summary(handler), type(exc).__name__, qualified(type(handler)))
        raise HTTPError(500) from None


class _Door(RequestHandler):
    """The mixin every guarded handler class gets first in its MRO."""

    gate: LoginGate
    door_policy = "login"
    door_reason = ""

    async def prepare(self) -> None:
        if self.door_policy in ("self", "login") and not await self.gate.admit(self):
            return  # the gate answered: redirect to a clean URL, or 429
        if self.door_policy == "login" and self.gate.auth.known_user(self) is None:
            raise HTTPError(401)
        await _contained(self, super().prepare)

    def _request_summary(self) -> str:
        return summary(self)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, HTTPError):
            super().log_exception(typ, value, tb)  # one line, through _request_summary (redacted)
        else:  # Tornado's default also prints the request with its Cookie and Authorization headers
            app_log.error("Uncaught exception %s", summary(self), exc_info=(typ, value, tb))


def _verb(name: str) -> Callable[..., Any]:
    async def call(self: RequestHandler, *args: Any, **kwargs: Any) -> Any:
        return await _contained(self, getattr(super(_Door, self), name), *args, **kwargs)

    call.__name__ = name
    return call


for _name in VERBS:
    setattr(_Door, _name, _verb(_name))


class _SocketDoor(_Door):
    """The mixin of guarded websocket handlers: messages are contained too."""

    async def open(self, *args: Any, **kwargs: Any) -> None:
        await _contained(self, super().open, *args, **kwargs)  # type: ignore[misc]

    async def on_message(self, message: str | bytes) -> None:
        try:
            await _contained(self, super().on_message, message)  # type: ignore[misc]
        except HTTPError:
            raise RuntimeError("a websocket message handler raised a BaseException") from None


class SafeComponentHandler(ComponentResourceHandler):
    """Panel's component resources, without importing the module a URL names (only loaded panel/bokeh modules)."""

    def parse_url_path(self, path: str) -> str:
        module = path.split("/", 1)[0]
        if module.split(".", 1)[0] not in COMPONENT_PACKAGES or module not in sys.modules:
            raise HTTPError(404, "no such component resource")
        return str(super().parse_url_path(path))


def guarded(cls: type[RequestHandler], gate: LoginGate) -> type[RequestHandler]:
    """Return ``cls`` behind the door (idempotent)."""
    if issubclass(cls, _Door):
        return cls
    policy, reason = policy_of(cls)
    if issubclass(cls, ComponentResourceHandler):
        cls, policy, reason = SafeComponentHandler, "login", "imports nothing; loaded panel/bokeh modules only"
    mixin = _SocketDoor if issubclass(cls, WebSocketHandler) else _Door
    attrs = {"gate": gate, "door_policy": policy, "door_reason": reason, "__module__": cls.__module__,
             "__qualname__": cls.__qualname__}
    return type(cls.__name__, (mixin, cls), attrs)


def rules(router: Router) -> Iterator[Rule]:
    """Yield every rule of ``router`` and of the routers nested in it."""
    for rule in getattr(router, "rules", ()):
        if isinstance(rule.target, Router):
            yield from rules(rule.target)
        else:
            yield rule


def guard_routes(app: Application, gate: LoginGate) -> list[Rule]:
    """Put every route of ``app`` behind the door and redact its access log; return the handler rules."""
    out = []
    for rule in rules(app.default_router):
        if isinstance(rule.target, type) and issubclass(rule.target, RequestHandler):
            rule.target = guarded(rule.target, gate)
            out.append(rule)
    app.settings["log_function"] = log_request
    return out
