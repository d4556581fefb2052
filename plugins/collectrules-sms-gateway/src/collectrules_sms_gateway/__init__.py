"""collectrules-sms-gateway: a collectrules transport that posts SMS to an HTTP gateway.

The plugin itself is :mod:`collectrules_sms_gateway.plugin` (the entry point); the sending logic, with
retries and a rate limit, is :mod:`collectrules_sms_gateway.gateway`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
