"""The built-in transports against real endpoints: a local SMTP server, a local HTTP server, a folder.

Each must report ``sent`` only when the message was handed over, ``failed`` when it certainly was not, and
raise when the outcome is unknown (so the dispatcher keeps the attempt in doubt instead of sending twice).
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from collectrules.builtin.transports import BUILTIN_TRANSPORTS, TransportConfigError, message_id
from collectrules.registry import Registry

TRANSPORTS = {t.name: t for t in BUILTIN_TRANSPORTS}
KEY = "5f" * 32


def _message(**changes: Any) -> dict[str, Any]:
    base = {"channel": "email", "to": "ann@example.com", "from": None, "subject": "Your account",
            "body": "Dear Ann,\nyour balance is 1250.50.\n", "account_id": "A1", "person_id": None,
            "debt_id": None, "idempotency_key": KEY, "template": "reminder", "stage": "early",
            "party": "debtor"}
    return {**base, **changes}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_builtin_transports_are_registered_with_schemas() -> None:
    registry = Registry.builtin_only()
    assert {"smtp", "webhook", "outbox"} <= set(registry.transports)
    for transport in BUILTIN_TRANSPORTS:
        assert transport.params_schema["additionalProperties"] is False
        assert transport.params_schema["required"]


# ---- smtp ----------------------------------------------------------------------------------------------


class _Mailbox:
    """aiosmtpd handler: keeps every message, refuses recipients starting with ``nobody``, and drops the
    connection in the middle of a message to ``hangup@``."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(rcpt.startswith("hangup") for rcpt in envelope.rcpt_tos):
            server.transport.close()
            return "421 closing"
        self.envelopes.append(envelope)
        return "250 OK queued"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"collections" \
        and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 on failure


@pytest.fixture()
def smtp_server() -> Iterator[tuple[int, _Mailbox]]:
    mailbox = _Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


def test_smtp_sends_with_login_and_a_message_id_from_the_key(smtp_server: tuple[int, _Mailbox],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    port, mailbox = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": port, "username": "collections",
                                    "password_env": "TEST_SMTP_PASSWORD",
                                    "from": "collections@lender.example", "timeout_seconds": 5})
    result = send(_message())

    assert result.outcome == "sent"
    assert result.reference == f"<{KEY}@lender.example>" == message_id(KEY, "collections@lender.example")
    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "collections@lender.example"
    assert envelope.rcpt_tos == ["ann@example.com"]
    received = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert received["Message-ID"] == result.reference
    assert received["Subject"] == "Your account"
    assert received.get_content().replace("\r\n", "\n") == "Dear Ann,\nyour balance is 1250.50.\n"


def test_smtp_channel_sender_overrides_the_params(smtp_server: tuple[int, _Mailbox]) -> None:
    port, mailbox = smtp_server
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": port, "from": "default@lender.example"})
    assert send(_message(**{"from": "Collections <team@lender.example>"})).outcome == "sent"
    assert mailbox.envelopes[0].mail_from == "team@lender.example"


def test_smtp_wrong_password_is_failed_and_nothing_is_sent(smtp_server: tuple[int, _Mailbox],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    port, mailbox = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": port, "username": "collections",
                                    "password_env": "TEST_SMTP_PASSWORD", "from": "c@lender.example"})
    result = send(_message())
    assert result.outcome == "failed" and "refused the session" in (result.detail or "")
    assert mailbox.envelopes == []


def test_smtp_rejected_recipient_is_failed(smtp_server: tuple[int, _Mailbox]) -> None:
    port, mailbox = smtp_server
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": port, "from": "c@lender.example"})
    result = send(_message(to="nobody@example.com"))
    assert result.outcome == "failed" and "550" in (result.detail or "")
    assert mailbox.envelopes == []


def test_smtp_connection_dropped_mid_message_raises_as_unknown(smtp_server: tuple[int, _Mailbox]) -> None:
    port, _ = smtp_server
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": port, "from": "c@lender.example",
                                    "timeout_seconds": 5})
    with pytest.raises(OSError):
        send(_message(to="hangup@example.com"))


def test_smtp_unreachable_server_is_failed() -> None:
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": _free_port(), "from": "c@lender.example",
                                    "timeout_seconds": 2})
    result = send(_message())
    assert result.outcome == "failed" and "cannot connect" in (result.detail or "")


def test_smtp_without_sender_or_address_is_failed() -> None:
    send = TRANSPORTS["smtp"].open({"host": "127.0.0.1", "port": _free_port()})
    assert send(_message()).detail == "no sender: set `from` on the channel or in the smtp params"
    assert send(_message(to=None, **{"from": "c@lender.example"})).outcome == "failed"


def test_smtp_password_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    with pytest.raises(TransportConfigError, match="TEST_SMTP_PASSWORD"):
        TRANSPORTS["smtp"].open({"host": "127.0.0.1", "username": "u", "password_env": "TEST_SMTP_PASSWORD"})


# ---- webhook -------------------------------------------------------------------------------------------


class _Endpoint(BaseHTTPRequestHandler):
    """Answers by path: /ok 201 with an id, /plain 204, /down 503, /slow after a pause, /moved 307 to
    /ok on this server, /away 307 to the other server, /see-other 303 to /ok."""

    other_port = 0

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.seen.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        if self.path == "/ok":
            self._reply(201, b'{"id": "msg-42", "status": "queued"}')
        elif self.path == "/plain":
            self._reply(204, b"")
        elif self.path == "/down":
            self._reply(503, b"maintenance")
        elif self.path == "/slow":
            time.sleep(0.5)
            self._reply(200, b"{}")
        elif self.path == "/moved":
            port = self.server.server_address[1]  # type: ignore[index]
            self._redirect(307, f"http://127.0.0.1:{port}/ok")
        elif self.path == "/away":
            self._redirect(307, f"http://localhost:{self.other_port}/ok")
        elif self.path == "/see-other":
            self._redirect(303, "/ok")
        else:
            self._reply(404, b"")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        return


class _BoundedServer:
    """An HTTP server in a thread that answers at most ``limit`` requests, then stops by itself."""

    def __init__(self, limit: int = 10) -> None:
        self.server = HTTPServer(("127.0.0.1", 0), _Endpoint)
        self.server.seen = []  # type: ignore[attr-defined]
        self.server.timeout = 0.05
        self.limit = limit
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        handled = 0
        deadline = time.monotonic() + 30
        while handled < self.limit and not self.stop.is_set() and time.monotonic() < deadline:
            before = len(self.server.seen)  # type: ignore[attr-defined]
            self.server.handle_request()
            handled += len(self.server.seen) - before  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def seen(self) -> list[tuple[str, dict[str, str], bytes]]:
        return self.server.seen  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> _BoundedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture()
def endpoints() -> Iterator[tuple[_BoundedServer, _BoundedServer]]:
    with _BoundedServer() as main, _BoundedServer() as other:
        _Endpoint.other_port = other.server.server_port
        yield main, other


def test_webhook_posts_json_with_the_idempotency_key(endpoints: tuple[_BoundedServer, _BoundedServer],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = endpoints
    monkeypatch.setenv("TEST_DIALER_TOKEN", "Bearer t0ken")
    send = TRANSPORTS["webhook"].open({"url": server.url + "/ok", "headers": {"X-Campaign": "early"},
                                       "headers_env": {"Authorization": "TEST_DIALER_TOKEN"}})
    result = send(_message(channel="phone", to="+15550001", subject=None, body=None))

    assert (result.outcome, result.reference) == ("sent", "msg-42")
    [(path, headers, body)] = server.seen
    assert path == "/ok"
    assert headers["Idempotency-Key"] == KEY
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["X-Campaign"] == "early"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["channel"] == "phone" and payload["to"] == "+15550001" and payload["account_id"] == "A1"


def test_webhook_2xx_without_an_id_is_sent_without_reference(endpoints: tuple[_BoundedServer, _BoundedServer]
                                                             ) -> None:
    server, _ = endpoints
    result = TRANSPORTS["webhook"].open({"url": server.url + "/plain"})(_message())
    assert (result.outcome, result.reference) == ("sent", None)


def test_webhook_error_status_is_failed(endpoints: tuple[_BoundedServer, _BoundedServer]) -> None:
    server, _ = endpoints
    result = TRANSPORTS["webhook"].open({"url": server.url + "/down"})(_message())
    assert result.outcome == "failed" and "HTTP 503" in (result.detail or "")


def test_webhook_follows_a_307_on_the_same_host_with_the_body(endpoints: tuple[_BoundedServer, _BoundedServer]
                                                              ) -> None:
    server, _ = endpoints
    result = TRANSPORTS["webhook"].open({"url": server.url + "/moved"})(_message())
    assert (result.outcome, result.reference) == ("sent", "msg-42")
    assert [path for path, _, _ in server.seen] == ["/moved", "/ok"]
    assert server.seen[0][2] == server.seen[1][2]


def test_webhook_never_follows_a_redirect_to_another_host(endpoints: tuple[_BoundedServer, _BoundedServer]
                                                          ) -> None:
    server, other = endpoints
    result = TRANSPORTS["webhook"].open({"url": server.url + "/away"})(_message())
    assert result.outcome == "failed" and "HTTP 307" in (result.detail or "")
    time.sleep(0.1)
    assert other.seen == []


def test_webhook_does_not_turn_a_post_into_a_get(endpoints: tuple[_BoundedServer, _BoundedServer]) -> None:
    server, _ = endpoints
    result = TRANSPORTS["webhook"].open({"url": server.url + "/see-other"})(_message())
    assert result.outcome == "failed" and "HTTP 303" in (result.detail or "")
    assert [path for path, _, _ in server.seen] == ["/see-other"]


def test_webhook_timeout_raises_as_unknown(endpoints: tuple[_BoundedServer, _BoundedServer]) -> None:
    server, _ = endpoints
    send = TRANSPORTS["webhook"].open({"url": server.url + "/slow", "timeout_seconds": 0.1})
    with pytest.raises(OSError):
        send(_message())


def test_webhook_refused_connection_is_failed() -> None:
    result = TRANSPORTS["webhook"].open({"url": f"http://127.0.0.1:{_free_port()}/x"})(_message())
    assert result.outcome == "failed" and "cannot connect" in (result.detail or "")


def test_webhook_secret_header_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DIALER_TOKEN", raising=False)
    with pytest.raises(TransportConfigError, match="TEST_DIALER_TOKEN"):
        TRANSPORTS["webhook"].open({"url": "http://127.0.0.1:9/x",
                                    "headers_env": {"Authorization": "TEST_DIALER_TOKEN"}})


# ---- outbox --------------------------------------------------------------------------------------------


def test_outbox_writes_one_text_file_per_message(tmp_path: Path) -> None:
    send = TRANSPORTS["outbox"].open({"dir": str(tmp_path / "out")})
    result = send(_message(channel="sms", to="+15550001", subject=None, body="Hi Ann, 1250.50 is overdue."))

    target = tmp_path / "out" / "sms" / f"{KEY}.txt"
    assert (result.outcome, result.reference) == ("sent", str(target))
    text = target.read_text(encoding="utf-8")
    assert text.startswith("To: +15550001\nChannel: sms\nAccount: A1\nTemplate: reminder\n")
    assert text.endswith("\n\nHi Ann, 1250.50 is overdue.")
    assert [p.name for p in (tmp_path / "out" / "sms").iterdir()] == [f"{KEY}.txt"]  # no temporary file left


def test_outbox_writes_email_as_eml(tmp_path: Path) -> None:
    send = TRANSPORTS["outbox"].open({"dir": str(tmp_path)})
    send(_message(**{"from": "c@lender.example"}))
    written = email.message_from_bytes((tmp_path / "email" / f"{KEY}.eml").read_bytes(),
                                       policy=email.policy.default)
    assert written["To"] == "ann@example.com" and written["Message-ID"] == f"<{KEY}@lender.example>"
    assert written.get_content() == "Dear Ann,\nyour balance is 1250.50.\n"


def test_outbox_replaces_atomically_and_refuses_unsafe_names(tmp_path: Path) -> None:
    send = TRANSPORTS["outbox"].open({"dir": str(tmp_path)})
    send(_message(channel="letter", body="first"))
    send(_message(channel="letter", body="second"))
    assert (tmp_path / "letter" / f"{KEY}.txt").read_text(encoding="utf-8").endswith("\n\nsecond")
    result = send(_message(channel="letter", idempotency_key="../../escape"))
    assert result.outcome == "failed"
    assert sorted(p.name for p in tmp_path.rglob("*")) == [f"{KEY}.txt", "letter"]
