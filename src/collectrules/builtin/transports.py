"""Built-in delivery transports: ``smtp`` (email), ``webhook`` (an HTTP endpoint: SMS gateway, dialer …) and
``outbox`` (one file per message in a folder, for review or for another system to pick up).

A transport's sender returns a :class:`~collectrules.registry.DeliveryResult` when it knows what happened:
``sent`` when the message was handed over, ``failed`` when it certainly was not (connection refused,
recipient rejected, an HTTP error status). When the outcome is unknown (the connection dropped after the
message went out, a response timed out) it raises, and the dispatcher keeps the attempt *in doubt* rather
than risk sending it twice.

Secrets never stand in a policy: ``smtp`` reads its password, and ``webhook`` its secret headers, from
environment variables named in the params.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import socket
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import CollectRulesError
from ..registry import DeliveryResult, Transport
from . import hookimpl

Sender = Callable[[dict[str, Any]], DeliveryResult]

_ENV_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
#: how much of a webhook's response body is read: enough for an id, bounded against a misbehaving server
MAX_RESPONSE_BYTES = 64 * 1024
#: idempotency keys become file names; anything else could climb out of the outbox folder
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class TransportConfigError(CollectRulesError):
    """A transport cannot be opened with its settings (an environment variable it names is not set …)."""

    default_code = "CR901"


SMTP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["host"],
    "dependentRequired": {"username": ["password_env"], "password_env": ["username"]},
    "properties": {
        "host": {"type": "string", "minLength": 1, "description": "The SMTP server's host name."},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                 "description": "The server's port (default 587 with starttls, else 25)."},
        "starttls": {"type": "boolean",
                     "description": "Upgrade the connection with STARTTLS (default false)."},
        "username": {"type": "string", "minLength": 1,
                     "description": "Login name, when the server needs one."},
        "password_env": {**_ENV_NAME,
                         "description": "Name of the environment variable holding the password."},
        "from": {"type": "string", "minLength": 1,
                 "description": "Default sender address; the channel's `from` overrides it."},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 600,
                            "description": "Network timeout in seconds (default 30)."},
    },
}

WEBHOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://[^/?#\\s]+",
                "description": "Where messages are POSTed."},
        "headers": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Extra request headers (not secrets: use headers_env for those)."},
        "headers_env": {"type": "object", "additionalProperties": _ENV_NAME,
                        "description": "Headers whose values are read from environment variables, "
                                       "e.g. {Authorization: DIALER_TOKEN}."},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 600,
                            "description": "Network timeout in seconds (default 10)."},
    },
}

OUTBOX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["dir"],
    "properties": {
        "dir": {"type": "string", "minLength": 1,
                "description": "Folder receiving <channel>/<idempotency key>.txt (.eml for email) files."},
    },
}


def _secret(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise TransportConfigError(f"the environment variable {variable} ({what}) is not set",
                                   hint=f"export {variable}=… before sending; secrets never go in the policy")
    return value


def message_id(idempotency_key: str, sender: str | None) -> str:
    """A Message-ID that is the same every time the same attempt is sent, so receivers can drop repeats."""
    address = parseaddr(sender or "")[1]
    domain = address.rpartition("@")[2] if "@" in address else "collectrules.invalid"
    return f"<{idempotency_key}@{domain}>"


def build_email(message: dict[str, Any], default_sender: str | None = None) -> EmailMessage:
    """The RFC 5322 message for one attempt (used by ``smtp`` and by ``outbox`` for the email channel)."""
    sender = message.get("from") or default_sender
    email = EmailMessage()
    if sender:
        email["From"] = sender
    if message.get("to"):
        email["To"] = message["to"]
    email["Subject"] = message.get("subject") or ""
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message["idempotency_key"], sender)
    email.set_content(message.get("body") or "")
    return email


# ---- smtp ----------------------------------------------------------------------------------------------


def open_smtp(params: dict[str, Any]) -> Sender:
    """An SMTP sender; one connection per message, so a dropped connection affects one message only."""
    host = params["host"]
    starttls = bool(params.get("starttls", False))
    port = int(params.get("port", 587 if starttls else 25))
    timeout = float(params.get("timeout_seconds", 30))
    username = params.get("username")
    password = _secret(params["password_env"], f"password of {username} on {host}") if username else None
    default_sender = params.get("from")

    def send(message: dict[str, Any]) -> DeliveryResult:
        email = build_email(message, default_sender)
        if not message.get("to"):
            return DeliveryResult("failed", None, "no email address to send to")
        if "From" not in email:
            return DeliveryResult("failed", None,
                                  "no sender: set `from` on the channel or in the smtp params")
        try:
            client = smtplib.SMTP(host, port, timeout=timeout)
        except (OSError, smtplib.SMTPException) as exc:
            # nothing was sent: the server never accepted a connection
            return DeliveryResult("failed", None, f"cannot connect to {host}:{port}: {exc}")
        with client:
            try:
                if starttls:
                    client.starttls(context=ssl.create_default_context())
                if username and password:
                    client.login(username, password)
            except (OSError, smtplib.SMTPException) as exc:
                return DeliveryResult("failed", None, f"{host}:{port} refused the session: {exc}")
            try:
                client.send_message(email)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                # the server answered with a rejection: the message was certainly not accepted
                return DeliveryResult("failed", None, f"{host} rejected the message: {exc}")
            # any other error (a dropped connection mid-message) propagates: the outcome is unknown
        return DeliveryResult("sent", email["Message-ID"], f"accepted by {host}:{port}")

    return send


# ---- webhook -------------------------------------------------------------------------------------------


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows only 307/308 redirects (which keep the method and body) to the same scheme, host and port.

    Any other redirect is not followed, so the POST fails with the redirect's status instead of sending the
    message somewhere else, or silently turning into a GET without it.
    """

    def __init__(self, origin: tuple[str, str]) -> None:
        super().__init__()
        self.origin = origin

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        if code not in (307, 308) or (target.scheme, target.netloc) != self.origin:
            return None
        return urllib.request.Request(newurl, data=req.data, headers=dict(req.header_items()), method="POST")


def open_webhook(params: dict[str, Any]) -> Sender:
    """A sender that POSTs each message as JSON; 2xx means sent (with the response's ``id`` as reference)."""
    url = params["url"]
    parts = urllib.parse.urlsplit(url)
    timeout = float(params.get("timeout_seconds", 10))
    headers = {"Content-Type": "application/json", "User-Agent": f"collectrules/{__version__}",
               **params.get("headers", {})}
    for header, variable in params.get("headers_env", {}).items():
        headers[header] = _secret(variable, f"header {header} for {parts.netloc}")
    opener = urllib.request.build_opener(_SameOriginRedirects((parts.scheme, parts.netloc)))

    def send(message: dict[str, Any]) -> DeliveryResult:
        body = json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={**headers, "Idempotency-Key": message["idempotency_key"]})
        try:
            with opener.open(request, timeout=timeout) as response:
                status = response.status
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            exc.close()
            return DeliveryResult("failed", None, f"HTTP {exc.code} from {parts.netloc}")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError | socket.gaierror):
                return DeliveryResult("failed", None, f"cannot connect to {parts.netloc}: {exc.reason}")
            raise  # the request may have reached the server: unknown outcome
        return DeliveryResult("sent", _response_id(raw), f"HTTP {status} from {parts.netloc}")

    return send


def _response_id(raw: bytes) -> str | None:
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError):
        return None
    identifier = data.get("id") if isinstance(data, dict) else None
    if isinstance(identifier, str | int) and not isinstance(identifier, bool):
        return str(identifier)
    return None


# ---- outbox --------------------------------------------------------------------------------------------


def _text_file(message: dict[str, Any]) -> bytes:
    headers = [("To", message.get("to")), ("From", message.get("from")), ("Subject", message.get("subject")),
               ("Channel", message.get("channel")), ("Account", message.get("account_id")),
               ("Template", message.get("template")), ("Idempotency-Key", message.get("idempotency_key"))]
    head = "".join(f"{name}: {value}\n" for name, value in headers if value)
    return (head + "\n" + (message.get("body") or "")).encode("utf-8")


def open_outbox(params: dict[str, Any]) -> Sender:
    """A sender writing ``<dir>/<channel>/<key>.txt`` (``.eml`` for email).

    Each file is written under a temporary name and renamed into place, so a reader never sees half a file.
    """
    root = Path(params["dir"])

    def send(message: dict[str, Any]) -> DeliveryResult:
        key = str(message["idempotency_key"])
        channel = str(message["channel"])
        if not _SAFE_KEY.match(key) or not _SAFE_KEY.match(channel):
            return DeliveryResult("failed", None, "the idempotency key or channel is not a safe file name")
        folder = root / channel
        folder.mkdir(parents=True, exist_ok=True)
        if channel == "email":
            content, suffix = build_email(message).as_bytes(), ".eml"
        else:
            content, suffix = _text_file(message), ".txt"
        target = folder / f"{key}{suffix}"
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{key}.", suffix=".tmp", delete=False)
        try:
            with handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        return DeliveryResult("sent", str(target), f"written to {target}")

    return send


BUILTIN_TRANSPORTS: tuple[Transport, ...] = (
    Transport("smtp", "Email through an SMTP server (STARTTLS and login optional).", SMTP_SCHEMA, open_smtp),
    Transport("webhook", "HTTP POST of each message as JSON (SMS gateway, dialer, messaging hub).",
              WEBHOOK_SCHEMA, open_webhook),
    Transport("outbox", "One file per message in a folder, written atomically.", OUTBOX_SCHEMA, open_outbox),
)


@hookimpl
def collectrules_register_transports(register: Callable[[Transport], None]) -> None:
    for transport in BUILTIN_TRANSPORTS:
        register(transport)
