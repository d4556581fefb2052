"""Tests of the sms_gateway transport against a local HTTP server on 127.0.0.1.

Time is faked: the sender's clock and sleep are a :class:`FakeTime`, so backoff and rate-limit waits are
recorded instead of slept, and the suite runs in milliseconds.
"""

from __future__ import annotations

import email.utils
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pluggy
import pytest
from collectrules import hookspecs
from collectrules.errors import PluginError
from collectrules.registry import registry_from

from collectrules_sms_gateway import plugin
from collectrules_sms_gateway.gateway import (
    GatewayConfig,
    SmsGateway,
    TokenBucket,
    backoff_delay,
    http_post,
    parse_retry_after,
)

#: the fake wall clock (Unix time) Retry-After dates are measured from
WALL = 1_800_000_000.0

MESSAGE: dict[str, Any] = {"channel": "sms", "to": "+15550100", "subject": None, "body": "Please call us.",
                           "account_id": "A1", "idempotency_key": "k-123", "template": "friendly"}


class FakeTime:
    """A monotonic clock that moves only when something sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class Gateway(ThreadingHTTPServer):
    """A scripted SMS gateway: answers each POST with the next scripted response, then 200 with an id."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/send"

    def fail(self, times: int, status: int, headers: dict[str, str] | None = None,
             body: bytes = b"{}") -> None:
        self.script += [(status, headers or {}, body)] * times


class _Handler(BaseHTTPRequestHandler):
    server: Gateway
    timeout = 5  # a stuck client cannot hold a server thread for long

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                         "json": json.loads(body)})
            if self.server.script:
                status, headers, payload = self.server.script.pop(0)
            else:
                status, headers = 200, {}
                payload = json.dumps({"id": f"msg-{len(self.server.requests)}"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Keep the test output clean."""


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy set in the environment must not see test traffic
    server = Gateway()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def make_sender(url: str, fake: FakeTime, post: Any = http_post, **params: Any) -> SmsGateway:
    config = GatewayConfig.from_params({"url": url, "rate_per_second": 1000, **params},
                                       environ={"SMS_KEY": "secret-key"})
    return SmsGateway(config, post=post, clock=fake.clock, sleep=fake.sleep, uniform=lambda: 0.5,
                      wall_clock=lambda: WALL)


def test_posts_the_message_as_json_with_key_and_idempotency_key(gateway: Gateway, fake: FakeTime) -> None:
    sender = make_sender(gateway.url, fake, api_key_env="SMS_KEY", sender="ACME")
    result = sender(MESSAGE)
    assert (result.outcome, result.reference) == ("sent", "msg-1")
    [request] = gateway.requests
    assert request["path"] == "/send"
    assert request["json"] == {"to": "+15550100", "text": "Please call us.", "from": "ACME",
                               "reference": "k-123", "account_id": "A1"}
    assert request["headers"]["Authorization"] == "Bearer secret-key"
    assert request["headers"]["Idempotency-Key"] == "k-123"
    assert "secret-key" not in (result.detail or "")


def test_the_messages_own_sender_overrides_the_configured_one(gateway: Gateway, fake: FakeTime) -> None:
    make_sender(gateway.url, fake, sender="ACME")({**MESSAGE, "from": "ACME Loans"})
    assert gateway.requests[0]["json"]["from"] == "ACME Loans"


def test_retries_503_with_exponential_backoff_then_sends(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(2, 503)
    result = make_sender(gateway.url, fake)(MESSAGE)
    assert result.outcome == "sent"
    assert result.reference == "msg-3"
    assert result.detail == "HTTP 200 after 3 attempt(s)"
    # base 0.5 s doubling, equal jitter with u = 0.5 → 75 % of each step
    assert fake.sleeps == [0.375, 0.75]
    assert {r["headers"]["Idempotency-Key"] for r in gateway.requests} == {"k-123"}


def test_retry_after_in_seconds_replaces_the_backoff(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(1, 429, {"Retry-After": "2"})
    assert make_sender(gateway.url, fake)(MESSAGE).outcome == "sent"
    assert fake.sleeps == [2.0]


def test_retry_after_as_http_date(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(1, 503, {"Retry-After": email.utils.formatdate(WALL + 3, usegmt=True)})
    assert make_sender(gateway.url, fake)(MESSAGE).outcome == "sent"
    assert fake.sleeps == [3.0]


def test_a_retry_after_beyond_the_limit_fails_without_waiting(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(1, 503, {"Retry-After": "3600"})
    result = make_sender(gateway.url, fake)(MESSAGE)
    assert result.outcome == "failed"
    assert result.detail == ("gave up after 1 attempt(s); last: HTTP 503: {}; the gateway asked to retry "
                             "after 3600 s, more than 60 s")
    assert fake.sleeps == []
    assert len(gateway.requests) == 1


def test_gives_up_after_max_retries(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(10, 502, body=b'{"error": "upstream down"}')
    result = make_sender(gateway.url, fake, max_retries=2)(MESSAGE)
    assert result.outcome == "failed"
    assert result.detail == 'gave up after 3 attempt(s); last: HTTP 502: {"error": "upstream down"}'
    assert len(gateway.requests) == 3
    assert fake.sleeps == [0.375, 0.75]


def test_a_client_error_is_final(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(1, 400, body=b'{"error": "invalid number"}')
    result = make_sender(gateway.url, fake)(MESSAGE)
    assert (result.outcome, result.detail) == ("failed", 'HTTP 400: {"error": "invalid number"}')
    assert len(gateway.requests) == 1
    assert fake.sleeps == []


def test_redirects_are_not_followed(gateway: Gateway, fake: FakeTime) -> None:
    gateway.fail(1, 302, {"Location": "http://127.0.0.1:9/elsewhere"})
    result = make_sender(gateway.url, fake)(MESSAGE)
    assert result.outcome == "failed"
    assert result.detail is not None and result.detail.startswith("HTTP 302")
    assert len(gateway.requests) == 1


def test_connection_refused_is_retried_then_fails(fake: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = make_sender(f"http://127.0.0.1:{port}/send", fake, max_retries=2)(MESSAGE)
    assert result.outcome == "failed"
    assert result.detail is not None
    assert result.detail.startswith("gave up after 3 attempt(s); last: connection error")
    assert fake.sleeps == [0.375, 0.75]


class ScriptedPost:
    """An HTTP call that raises or answers from a script, for outcomes a real server cannot stage quickly."""

    def __init__(self, *steps: BaseException | int) -> None:
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, url: str, body: bytes, headers: Any,
                 timeout: float) -> tuple[int, dict[str, str], bytes]:
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step, {}, b'{"id": "g-1"}' if step == 200 else b"{}"


def test_a_timeout_then_success_is_sent(fake: FakeTime) -> None:
    post = ScriptedPost(TimeoutError("timed out"), 200)
    result = make_sender("http://gateway.test/send", fake, post=post)(MESSAGE)
    assert (result.outcome, result.reference, post.calls) == ("sent", "g-1", 2)


def test_an_unsettled_timeout_raises_so_the_attempt_stays_in_doubt(fake: FakeTime) -> None:
    post = ScriptedPost(TimeoutError("timed out"), 503, 503)
    with pytest.raises(TimeoutError) as caught:
        make_sender("http://gateway.test/send", fake, post=post, max_retries=2)(MESSAGE)
    assert caught.value.__notes__ == ["sms_gateway: outcome unknown after 3 attempt(s); last: HTTP 503: {}"]


def test_a_client_error_after_a_timeout_stays_in_doubt(fake: FakeTime) -> None:
    # a 409 may mean the timed-out attempt did go out; reporting "failed" could send the message twice
    post = ScriptedPost(ConnectionResetError("reset"), 409)
    with pytest.raises(ConnectionResetError):
        make_sender("http://gateway.test/send", fake, post=post)(MESSAGE)
    assert post.calls == 2


def test_a_message_without_a_number_is_not_sent(fake: FakeTime) -> None:
    post = ScriptedPost()
    result = make_sender("http://gateway.test/send", fake, post=post)({**MESSAGE, "to": None})
    assert (result.outcome, result.detail, post.calls) == ("failed", "no phone number to send to", 0)


def test_rate_limit_spaces_requests(gateway: Gateway, fake: FakeTime) -> None:
    sent_at: list[float] = []

    def timed_post(*args: Any) -> tuple[int, Any, bytes]:
        sent_at.append(round(fake.now, 6))
        return http_post(*args)

    sender = make_sender(gateway.url, fake, post=timed_post, rate_per_second=5)
    results = [sender({**MESSAGE, "idempotency_key": f"k-{i}"}) for i in range(4)]
    assert [r.outcome for r in results] == ["sent"] * 4
    assert sent_at == [1000.0, 1000.2, 1000.4, 1000.6]
    assert fake.sleeps == [0.2, 0.2, 0.2]


def test_retries_take_tokens_too(fake: FakeTime) -> None:
    post = ScriptedPost(429, 200)
    sender = make_sender("http://gateway.test/send", fake, post=post, rate_per_second=0.5)
    sender(MESSAGE)
    # the backoff (0.375 s) is shorter than the 2 s between requests, so the bucket waits the rest
    assert fake.sleeps == [0.375, 1.625]


def test_token_bucket_does_not_bank_idle_time(fake: FakeTime) -> None:
    bucket = TokenBucket(10, clock=fake.clock, sleep=fake.sleep)
    assert bucket.acquire() == 0.0
    fake.now += 60  # a minute idle earns one token, not six hundred
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.1)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    assert [backoff_delay(n, lambda: 0.0) for n in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert [backoff_delay(n, lambda: 0.999999) for n in range(2)] == [pytest.approx(0.5), pytest.approx(1.0)]
    assert backoff_delay(20, lambda: 0.0) == 15.0


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("7", 7.0), (" 0 ", 0.0), ("soon", None),
    (email.utils.formatdate(WALL + 90, usegmt=True), 90.0),
    (email.utils.formatdate(WALL - 90, usegmt=True), 0.0),
])
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, WALL) == expected


def test_config_applies_defaults() -> None:
    config = GatewayConfig.from_params({"url": "https://sms.example/send"}, environ={})
    assert config == GatewayConfig(url="https://sms.example/send", api_key=None, sender=None, max_retries=4,
                                   rate_per_second=10.0, timeout_seconds=10.0)


def test_config_needs_the_api_key_variable_it_names() -> None:
    with pytest.raises(PluginError) as caught:
        GatewayConfig.from_params({"url": "https://sms.example/send", "api_key_env": "SMS_KEY"}, environ={})
    assert caught.value.diagnostics[0].message == \
        "sms_gateway: environment variable SMS_KEY (api_key_env) is not set"


def test_config_refuses_non_http_urls() -> None:
    with pytest.raises(PluginError, match="must start with http:// or https://"):
        GatewayConfig.from_params({"url": "file:///etc/passwd"}, environ={})


def test_the_plugin_registers_the_transport_with_a_valid_params_schema() -> None:
    pm = pluggy.PluginManager("collectrules")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="sms_gateway")
    transport = registry_from(pm).transports["sms_gateway"]
    assert transport.origin == "sms_gateway"
    jsonschema.Draft202012Validator.check_schema(transport.params_schema)
    validator = jsonschema.Draft202012Validator(transport.params_schema)
    good = {"url": "https://sms.example/send", "api_key_env": "SMS_KEY", "sender": "ACME", "max_retries": 3,
            "rate_per_second": 2.5, "timeout_seconds": 5}
    assert list(validator.iter_errors(good)) == []
    bad = {"url": "ftp://sms.example", "rate_per_second": 0, "retries": 3}
    assert sorted(e.validator for e in validator.iter_errors(bad)) == \
        ["additionalProperties", "exclusiveMinimum", "pattern"]
    assert isinstance(transport.open({"url": "https://sms.example/send"}), SmsGateway)
