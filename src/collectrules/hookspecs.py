"""Every hook a collectrules plugin can implement, grouped by lifecycle phase.

Plugins implement hooks with ``from collectrules import hookimpl``. Registration hooks take a ``register``
callback rather than returning lists; the host's side of ``register`` rejects duplicate names and records
which plugin supplied each item. All hook names start with ``collectrules_``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .engine.decision import Decision
    from .policy.model import Policy

hookspec = pluggy.HookspecMarker("collectrules")

# --------------------------------------------------------------------------------------------------
# Registration: called once when the plugin registry is built.
# --------------------------------------------------------------------------------------------------


@hookspec
def collectrules_register_channels(register: Callable[[Any], None]) -> None:
    """Register contact channels.

    :param register: call it with a :class:`collectrules.registry.Channel` for each channel the plugin
        provides. A name that another plugin already registered is an error naming both plugins.
    :return: nothing; return values are ignored.

    Not ``firstresult``: every plugin is called. Added in 0.1.
    """


@hookspec
def collectrules_register_scorers(register: Callable[[Any], None]) -> None:
    """Register scoring models usable under ``scores:`` in a policy.

    :param register: call it with a :class:`collectrules.registry.Scorer` for each model. The scorer's
        ``params_schema`` (a JSON Schema fragment) validates the ``params`` a policy gives it.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_register_functions(register: Callable[[Any], None]) -> None:
    """Register functions callable from policy expressions.

    :param register: call it with a :class:`collectrules.lang.functions.Function`; its typed parameters and
        return type are what the type checker uses, so a policy calling it wrongly fails ``validate``.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_register_metrics(register: Callable[[Any], None]) -> None:
    """Register KPI metrics that ``kpis:`` entries may name.

    :param register: call it with a :class:`collectrules.registry.Metric`.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_register_reporters(register: Callable[[Any], None]) -> None:
    """Register output formats for evaluation summaries and reports.

    :param register: call it with a :class:`collectrules.registry.Reporter`.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_register_transports(register: Callable[[Any], None]) -> None:
    """Register delivery transports that send rendered messages (SMTP, webhook, outbox …).

    :param register: call it with a :class:`collectrules.registry.Transport`. A policy's ``channels:``
        section says which transport each channel uses; its ``params`` are validated against the
        transport's ``params_schema``.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_register_commands(cli: Any) -> None:
    """Add commands to the ``collectrules`` command line.

    :param cli: the :class:`click.Group`; call ``cli.add_command(...)``.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


# --------------------------------------------------------------------------------------------------
# Evaluation lifecycle
# --------------------------------------------------------------------------------------------------


@hookspec
def collectrules_before_evaluate(policy: Policy, as_of: Any) -> None:
    """Called once before a portfolio is evaluated.

    :param policy: the compiled policy's model.
    :param as_of: the timezone-aware as-of instant.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_after_decision(decision: Decision) -> None:
    """Called for every decision, in input order, before it is written out.

    :param decision: the decision; treat it as read-only.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


# --------------------------------------------------------------------------------------------------
# Dispatch lifecycle
# --------------------------------------------------------------------------------------------------


@hookspec
def collectrules_before_dispatch(attempt: Any) -> None:
    """Called before an attempt is sent (or, in a dry run, before it would be).

    :param attempt: the :class:`collectrules.dispatch.Attempt` about to be sent; read-only.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """


@hookspec
def collectrules_after_dispatch(attempt: Any, result: Any) -> None:
    """Called after an attempt was sent and recorded in the ledger.

    :param attempt: the :class:`collectrules.dispatch.Attempt` that was sent.
    :param result: its :class:`collectrules.registry.DeliveryResult`.
    :return: nothing.

    Not ``firstresult``. Added in 0.1.
    """

#: marks a plugin's hook implementations; re-exported as ``collectrules.hookimpl``
hookimpl = pluggy.HookimplMarker("collectrules")
