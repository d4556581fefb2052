"""The registry: channels, scorers, functions, metrics and reporters that plugins registered.

The registry is built once from the plugin manager. Each item records the plugin that supplied it, and a
second registration of the same name is a :class:`~collectrules.errors.PluginError` naming both plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import PluginError
from .lang.functions import Function, FunctionRegistry

#: contact data a channel may need from the account
CONTACT_DATA = ("phone", "email", "address")


@dataclass(frozen=True)
class Channel:
    """A contact channel.

    :param name: the name policies use (``sms``, ``phone`` …)
    :param needs: the contact data the account must have (``phone``, ``email`` or ``address``)
    :param counts_as_call: whether attempts count as telephone calls for call caps
    :param electronic: whether it is an electronic communication (needs an opt-out notice)
    :param templated: whether actions on it render a template
    """

    name: str
    description: str
    needs: str | None = None
    counts_as_call: bool = False
    electronic: bool = False
    templated: bool = True
    params_schema: dict[str, Any] | None = None
    origin: str = "builtin"


@dataclass(frozen=True)
class Scorer:
    """A scoring model. ``prepare(params, compile)`` returns a function of the evaluation context.

    ``compile(text, path)`` turns an expression inside the score's params (at ``path``, relative to the
    score's ``params``) into an evaluator, type-checked and located like any policy expression.
    """

    name: str
    description: str
    params_schema: dict[str, Any]
    prepare: Callable[[dict[str, Any], Callable[..., Any]], Callable[[Any], Any]]
    origin: str = "builtin"


@dataclass(frozen=True)
class Metric:
    """A KPI metric: its name, unit and pinned formula (shown in docs and reports), and how to compute it.

    ``compute(outcomes, period, account_filter, params)`` returns a
    :class:`~collectrules.kpi.metrics.MetricValue` for one period: ``outcomes`` is the
    :class:`~collectrules.kpi.outcomes.Outcomes` of the book, ``period`` a
    :class:`~collectrules.kpi.periods.Period`, ``account_filter`` an
    :class:`~collectrules.kpi.metrics.AccountFilter` (the KPI's ``where``) and ``params`` the KPI's params.
    A metric without ``compute`` can be named in policies but the report shows it as having no value.

    :param params_schema: JSON Schema of the KPI's ``params``, checked when the policy is validated
        (``None``: not checked).
    :param filter_names: the names a KPI's ``where`` may use with this metric, for metrics measured on book
        totals rather than per account (``None``: any name; empty: no ``where`` at all).
    """

    name: str
    description: str
    formula: str
    unit: str = "ratio"  # ratio | days | currency | count
    higher_is_better: bool = True
    origin: str = "builtin"
    compute: Callable[[Any, Any, Any, Mapping[str, Any]], Any] | None = None
    params_schema: dict[str, Any] | None = None
    filter_names: frozenset[str] | None = None


@dataclass(frozen=True)
class Reporter:
    name: str
    description: str
    render: Callable[..., str]
    media_type: str = "text/plain"
    origin: str = "builtin"


@dataclass(frozen=True)
class DeliveryResult:
    """What a transport reports for one message: ``outcome`` is a contact outcome (``sent``, ``delivered``,
    ``failed`` …), ``reference`` the provider's message id, ``detail`` a human note."""

    outcome: str
    reference: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Transport:
    """Sends rendered messages for channels configured to use it.

    ``open(params)`` returns a sender: ``send(message: dict) -> DeliveryResult``, where ``message`` holds
    ``channel``, ``to``, ``subject``, ``body``, ``account_id``, ``idempotency_key`` and ``template``.
    """

    name: str
    description: str
    params_schema: dict[str, Any]
    open: Callable[[dict[str, Any]], Callable[[dict[str, Any]], DeliveryResult]]
    origin: str = "builtin"


@dataclass
class Registry:
    channels: dict[str, Channel] = field(default_factory=dict)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    reporters: dict[str, Reporter] = field(default_factory=dict)
    transports: dict[str, Transport] = field(default_factory=dict)
    functions: FunctionRegistry = field(default_factory=lambda: FunctionRegistry(()))
    #: problems met while building (a plugin that failed to import, …), reported by the CLI
    problems: list[str] = field(default_factory=list)

    def _add(self, table: dict[str, Any], item: Any, origin: str, what: str) -> None:
        existing = table.get(item.name)
        if existing is not None:
            raise PluginError(f"{what} {item.name!r} is registered twice: by plugin {existing.origin!r} "
                              f"and by plugin {origin!r}", code="CR702",
                              hint=f"disable one of them with COLLECTRULES_DISABLE_PLUGINS={origin}")
        object.__setattr__(item, "origin", origin)
        table[item.name] = item

    def registrar(self, kind: str, origin: str) -> Callable[[Any], None]:
        """The ``register`` callback handed to a plugin's registration hook."""

        def register(item: Any) -> None:
            expected = {"channels": Channel, "scorers": Scorer, "metrics": Metric, "reporters": Reporter,
                        "functions": Function, "transports": Transport}[kind]
            if not isinstance(item, expected):
                raise PluginError(f"plugin {origin!r} registered {type(item).__name__} as one of its {kind}; "
                                  f"expected a {expected.__name__}", code="CR703")
            if kind == "functions":
                existing = self.functions.get(item.name)
                if existing is not None:
                    raise PluginError(f"function {item.name!r} is registered twice: by plugin "
                                      f"{existing.origin!r} and by plugin {origin!r}", code="CR702")
                self.functions.add(item, origin)
                return
            self._add(getattr(self, kind), item, origin, kind[:-1])

        return register

    @classmethod
    def builtin_only(cls) -> Registry:
        """A registry with only the built-in plugins (no discovery): for tests and library use."""
        from .plugins import get_plugin_manager

        return registry_from(get_plugin_manager(autoload=False, plugin_dirs=(), modules=()))


def registry_from(pm: Any) -> Registry:
    """Call every registration hook, plugin by plugin, so each item records its origin."""
    registry = Registry()
    for kind in ("channels", "scorers", "functions", "metrics", "reporters", "transports"):
        hook = getattr(pm.hook, f"collectrules_register_{kind}")
        for impl in reversed(hook.get_hookimpls()):
            origin = pm.get_name(impl.plugin) or repr(impl.plugin)
            impl.function(register=registry.registrar(kind, origin))
    registry.problems.extend(getattr(pm, "load_problems", []))
    return registry


def names(items: Iterable[Any]) -> list[str]:
    return sorted(i.name for i in items)

