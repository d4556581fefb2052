"""Built-in contact channels and what each needs from an account."""

from __future__ import annotations

from collections.abc import Callable

from ..registry import Channel
from . import hookimpl

BUILTIN_CHANNELS: tuple[Channel, ...] = (
    Channel("sms", "Text message to the debtor's mobile number.", needs="phone", electronic=True),
    Channel("email", "Email to the debtor's address.", needs="email", electronic=True),
    Channel("phone", "Outbound telephone call (agent or dialer).", needs="phone", counts_as_call=True,
            templated=False),
    Channel("letter", "Posted letter to the debtor's address.", needs="address"),
    Channel("field_visit", "Visit by a field agent at the debtor's address.", needs="address", templated=False),
    Channel("lawyer_letter", "Letter from a lawyer on the creditor's behalf.", needs="address"),
    Channel("legal", "Legal proceedings (claim filed with a court).", needs=None, templated=False),
)


@hookimpl
def collectrules_register_channels(register: Callable[[Channel], None]) -> None:
    for channel in BUILTIN_CHANNELS:
        register(channel)
