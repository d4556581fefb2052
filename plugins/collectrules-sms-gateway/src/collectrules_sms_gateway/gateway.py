"""Sending SMS through an HTTP gateway: retries with backoff, Retry-After, and a client-side rate limit.

One message is one ``POST`` of JSON to the gateway's URL::

    {"to": "+15550100", "text": "...", "from": "ACME", "reference": "<idempotency key>",
     "account_id": "A1"}

with ``Idempotency-Key: <idempotency key>`` (so a retry after a lost response cannot send twice on a
gateway that honours it) and, when configured, ``Authorization: Bearer <key>``.

Retries
    HTTP 429, HTTP 5xx and connection errors (refused, reset, timed out) are retried, at most
    ``max_retries`` times, always with the same ``Idempotency-Key``. Before retry *n* (from 0) the
    sender waits ``d·(0.5 + 0.5·u)`` seconds with ``d = min(30, 0.5·2ⁿ)`` and ``u`` uniform in [0, 1)
    ("equal jitter": exponential growth, but clients that failed together do not retry together). A
    ``Retry-After`` header (seconds or an HTTP date) replaces that wait; one longer than
    :data:`MAX_RETRY_AFTER` seconds ends the attempts instead of blocking the run. Any other status is
    final.

Rate limit
    A token bucket holding at most one token, refilled at ``rate_per_second``: every HTTP request, retries
    included, takes a token, so requests are at least ``1 / rate_per_second`` seconds apart and the
    gateway never sees a burst.

Outcomes
    ``sent`` when the gateway accepted the message (2xx; the reference is the ``id`` or ``message_id``
    of its JSON answer); ``failed``, with the reason in ``detail``, when it certainly was not sent (any
    other HTTP status, or every attempt refused). When an attempt may have reached the gateway without an
    answer (timeout, connection reset) and no later attempt got a 2xx, the sender *raises* that error,
    as collectrules' transports do for an unknown outcome, so the attempt is kept in doubt rather than
    sent twice. Redirects are not followed: a POST must not silently go elsewhere or turn into a GET.

The clock, sleep, random source and HTTP call are parameters, so tests run without waiting.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collectrules.errors import PluginError
from collectrules.registry import DeliveryResult

from . import __version__

#: first backoff step and its ceiling, in seconds
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: a Retry-After longer than this (seconds) is not waited for: the message fails and the run goes on
MAX_RETRY_AFTER = 60.0
#: how much of an error response's body is kept in ``detail``
DETAIL_LIMIT = 200
#: how much of a response is read: enough for an id or an error message, bounded against a bad server
MAX_RESPONSE_BYTES = 64 * 1024

#: ``post(url, body, headers, timeout) -> (status, response headers, response body)``; raises OSError
#: (URLError, ConnectionError, TimeoutError …) or http.client.HTTPException when no HTTP answer arrives
Post = Callable[[str, bytes, Mapping[str, str], float], tuple[int, Mapping[str, str], bytes]]


@dataclass(frozen=True)
class GatewayConfig:
    """The transport's parameters, with defaults applied and the API key read from the environment."""

    url: str
    api_key: str | None = None
    sender: str | None = None
    max_retries: int = 4
    rate_per_second: float = 10.0
    timeout_seconds: float = 10.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any],
                    environ: Mapping[str, str] | None = None) -> GatewayConfig:
        """Build from a policy's ``params``; a missing API key variable or a non-HTTP URL is an error."""
        environ = os.environ if environ is None else environ
        url = str(params["url"])
        if not url.startswith(("http://", "https://")):
            # urllib would also open file:// and ftp:// URLs; a transport must never read local files
            raise PluginError(f"sms_gateway: url must start with http:// or https://, got {url!r}")
        api_key = None
        variable = params.get("api_key_env")
        if variable is not None:
            api_key = environ.get(variable)
            if not api_key:
                raise PluginError(f"sms_gateway: environment variable {variable} (api_key_env) is not set",
                                  hint=f"export {variable}=<the gateway's API key>")
        return cls(url=url, api_key=api_key, sender=params.get("sender"),
                   max_retries=int(params.get("max_retries", 4)),
                   rate_per_second=float(params.get("rate_per_second", 10.0)),
                   timeout_seconds=float(params.get("timeout_seconds", 10.0)))


class TokenBucket:
    """Allows one request per ``1 / rate`` seconds on average, and bursts of at most ``capacity``.

    :param rate: tokens added per second
    :param capacity: most tokens held; 1 means evenly spaced requests
    :param clock: monotonic seconds
    :param sleep: waits the given seconds
    """

    def __init__(self, rate: float, capacity: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting until there is one; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = 0.0
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self._sleep(wait)
                # the wait earned the missing part of the token; counting from the end of the wait
                # means a sleep that overshoots banks nothing extra
                self._updated = max(self._updated, self._clock())
                self._tokens = 1.0
            self._tokens -= 1.0
            return wait


def backoff_delay(retry: int, uniform: Callable[[], float] = random.random, *, base: float = BACKOFF_BASE,
                  cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first): equal jitter over ``base·2ⁿ``."""
    ceiling = min(cap, base * 2.0 ** retry)
    return ceiling * (0.5 + 0.5 * uniform())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (Unix time); ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; an obsolete form without a zone means GMT too
        return None
    return max(0.0, when.timestamp() - now)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into its own HTTP error status (a final ``failed``)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float,
              ) -> tuple[int, Mapping[str, str], bytes]:
    """POST with the standard library; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        # the scheme was checked in GatewayConfig.from_params: only http and https get here
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read(MAX_RESPONSE_BYTES)
        finally:
            exc.close()


def _never_sent(exc: BaseException) -> bool:
    """Whether a failed request certainly did not reach the gateway (refused, or the name did not resolve)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _is_retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _reference(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        for key in ("id", "message_id"):
            if data.get(key) is not None:
                return str(data[key])
    return None


def _snippet(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


class SmsGateway:
    """The sender collectrules calls once per message: ``gateway(message) -> DeliveryResult``.

    :param config: the transport's parameters
    :param post: performs one HTTP request (default :func:`http_post`)
    :param clock: monotonic seconds, for the rate limit
    :param sleep: waits, for the rate limit and backoff
    :param uniform: random numbers in [0, 1), for the jitter
    :param wall_clock: Unix time, for ``Retry-After`` dates
    """

    def __init__(self, config: GatewayConfig, *, post: Post = http_post,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 uniform: Callable[[], float] = random.random,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._post = post
        self._sleep = sleep
        self._uniform = uniform
        self._wall_clock = wall_clock
        self.bucket = TokenBucket(config.rate_per_second, clock=clock, sleep=sleep)

    def _request(self, message: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        payload: dict[str, Any] = {"to": message["to"], "text": message.get("body") or ""}
        # the channel's `from:` in the policy, when the dispatcher passes one, overrides params' sender
        sender = message.get("from") or self.config.sender
        if sender:
            payload["from"] = sender
        for source, target in (("idempotency_key", "reference"), ("account_id", "account_id")):
            if message.get(source):
                payload[target] = message[source]
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"collectrules-sms-gateway/{__version__}"}
        if message.get("idempotency_key"):
            headers["Idempotency-Key"] = str(message["idempotency_key"])
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return json.dumps(payload).encode("utf-8"), headers

    def __call__(self, message: Mapping[str, Any]) -> DeliveryResult:
        if not message.get("to"):
            return DeliveryResult("failed", detail="no phone number to send to")
        body, headers = self._request(message)
        attempts = self.config.max_retries + 1
        made = 0
        last = ""
        # the latest error after which the message may have been sent; only a 2xx settles it
        in_doubt: BaseException | None = None
        for attempt in range(attempts):
            self.bucket.acquire()
            made += 1
            retry_after: float | None = None
            try:
                status, response_headers, response = self._post(self.config.url, body, headers,
                                                                 self.config.timeout_seconds)
            except (OSError, http.client.HTTPException) as exc:
                last = f"connection error: {exc}"
                if not _never_sent(exc):
                    in_doubt = exc
            else:
                if 200 <= status <= 299:
                    return DeliveryResult("sent", reference=_reference(response),
                                          detail=f"HTTP {status} after {made} attempt(s)")
                last = f"HTTP {status}: {_snippet(response)}"
                if not _is_retryable(status):
                    if in_doubt is None:
                        return DeliveryResult("failed", detail=last)
                    break  # e.g. 409 for a repeated idempotency key: the earlier attempt may have gone out
                header = {k.lower(): v for k, v in response_headers.items()}.get("retry-after")
                retry_after = parse_retry_after(header, self._wall_clock())
            if attempt == attempts - 1:
                break
            if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                last += (f"; the gateway asked to retry after {retry_after:.0f} s, "
                         f"more than {MAX_RETRY_AFTER:.0f} s")
                break
            self._sleep(retry_after if retry_after is not None else backoff_delay(attempt, self._uniform))
        if in_doubt is not None:
            in_doubt.add_note(f"sms_gateway: outcome unknown after {made} attempt(s); last: {last}")
            raise in_doubt
        return DeliveryResult("failed", detail=f"gave up after {made} attempt(s); last: {last}")
