"""The plugin: registers the ``sms_gateway`` transport with collectrules.

collectrules imports this module through the entry point in ``pyproject.toml`` every time it discovers
plugins (even for ``collectrules --help``), so it stays cheap: the HTTP machinery is imported only when a
sender is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collectrules import hookimpl
from collectrules.registry import DeliveryResult, Transport

#: the transport's name, as a policy's ``channels:`` section refers to it
TRANSPORT_NAME = "sms_gateway"

#: JSON Schema of the ``params`` a policy gives the transport; collectrules validates them against it
PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://",
                "description": "The gateway's send endpoint; each message is POSTed to it as JSON."},
        "api_key_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                        "description": "Name of the environment variable holding the API key, sent "
                                       "as 'Authorization: Bearer <key>'. The key never goes in a policy."},
        "sender": {"type": "string", "minLength": 1,
                   "description": "Sender id or number shown to the recipient (the 'from' field)."},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 4,
                        "description": "Retries after the first attempt, on HTTP 429, 5xx and connection "
                                       "errors; backoff is exponential with jitter."},
        "rate_per_second": {"type": "number", "exclusiveMinimum": 0, "default": 10,
                            "description": "Most requests per second this client sends (retries included)."},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300, "default": 10,
                            "description": "Time allowed for one HTTP request."},
    },
}


def open_transport(params: dict[str, Any]) -> Callable[[dict[str, Any]], DeliveryResult]:
    """Open a sender for ``params`` (already validated against :data:`PARAMS_SCHEMA`)."""
    from .gateway import GatewayConfig, SmsGateway

    return SmsGateway(GatewayConfig.from_params(params))


@hookimpl
def collectrules_register_transports(register: Callable[[Transport], None]) -> None:
    register(Transport(TRANSPORT_NAME, "Posts each SMS as JSON to an HTTP gateway, with retries (exponential "
                                       "backoff with jitter, Retry-After honoured) and a rate limit.",
                       PARAMS_SCHEMA, open_transport))
