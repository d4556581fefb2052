"""Plugin discovery and registration: entry points, plugin folders, ``-p``, disabling, and broken plugins.

Each test gets a fresh plugin manager (the ``pm`` fixture) or builds one with ``get_plugin_manager``; test
plugins are small classes registered under a name. Entry-point discovery is tested by replacing
``importlib.metadata.distributions``.
"""

from __future__ import annotations

import importlib.metadata
import re
import textwrap
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pytest

from collectrules import hookimpl, hookspecs
from collectrules.errors import PluginError
from collectrules.lang.functions import NUMBER, Function
from collectrules.lang.types import DECIMAL
from collectrules.plugins import (
    DEFAULT_PLUGINS,
    PluginManager,
    blocked_plugins,
    describe_plugins,
    get_plugin_manager,
)
from collectrules.registry import Channel, DeliveryResult, Metric, Reporter, Scorer, Transport, registry_from

BUILTIN_NAMES = [name.rsplit(".", 1)[-1] for name in DEFAULT_PLUGINS]


@pytest.fixture
def pm() -> Iterator[PluginManager]:
    """A plugin manager with the hook specifications and no plugins."""
    manager = PluginManager()
    manager.add_hookspecs(hookspecs)
    yield manager
    for name, plugin in list(manager.list_name_plugin()):
        if plugin is not None:
            manager.unregister(name=name)


@pytest.fixture(autouse=True)
def _no_plugin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLLECTRULES_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", raising=False)


class FakeEntryPoint:
    group = "collectrules"

    def __init__(self, name: str, plugin: object) -> None:
        self.name = name
        self._plugin = plugin

    def load(self) -> object:
        if isinstance(self._plugin, BaseException):
            raise self._plugin
        return self._plugin


class FakeDistribution:
    """Just what discovery reads from an installed distribution: metadata and entry points."""

    def __init__(self, name: str, version: str, **plugins: object) -> None:
        self.metadata = {"Name": name, "Version": version}
        self.entry_points = [FakeEntryPoint(ep_name, plugin) for ep_name, plugin in plugins.items()]


def installed(monkeypatch: pytest.MonkeyPatch, *dists: FakeDistribution) -> None:
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))


class PigeonPlugin:
    @hookimpl
    def collectrules_register_channels(self, register: Callable[[Channel], None]) -> None:
        register(Channel("pigeon", "Carrier pigeon to the debtor's address.", needs="address"))


# --------------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------------


def test_entry_points_load_with_their_distribution_version(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, FakeDistribution("collectrules-pigeon", "1.2.3", pigeon=PigeonPlugin()))
    pm = get_plugin_manager()
    assert pm.origins["pigeon"] == "entry point (collectrules-pigeon)"
    assert pm.versions["pigeon"] == "1.2.3"
    registry = registry_from(pm)
    assert registry.channels["pigeon"].origin == "pigeon"
    assert registry.channels["sms"].origin == "channels"
    assert registry.problems == []


def test_a_distribution_found_twice_on_the_path_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # an editable install puts the source folder, with its own metadata, on sys.path too
    installed(monkeypatch, FakeDistribution("collectrules-pigeon", "1.2.3", pigeon=PigeonPlugin()),
              FakeDistribution("collectrules_pigeon", "1.2.3", pigeon=PigeonPlugin()))
    pm = get_plugin_manager()
    assert pm.load_problems == []
    assert pm.get_plugin("pigeon") is not None


def test_entry_points_of_other_groups_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    dist = FakeDistribution("other-tool", "1.0", pigeon=PigeonPlugin())
    dist.entry_points[0].group = "console_scripts"
    installed(monkeypatch, dist)
    assert get_plugin_manager().get_plugin("pigeon") is None


def test_autoload_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, FakeDistribution("collectrules-pigeon", "1.2.3", pigeon=PigeonPlugin()))
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    assert pm.get_plugin("pigeon") is None
    assert sorted(pm.origins) == sorted(BUILTIN_NAMES)
    assert get_plugin_manager(autoload=True).get_plugin("pigeon") is not None


def test_plugins_are_disabled_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, FakeDistribution("collectrules-pigeon", "1.2.3", pigeon=PigeonPlugin()))
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGINS", "pigeon, reporters")
    pm = get_plugin_manager()
    assert blocked_plugins(pm) == ["pigeon", "reporters"]
    registry = registry_from(pm)
    assert "pigeon" not in registry.channels
    assert registry.reporters == {}
    assert "sms" in registry.channels


def test_an_entry_point_that_fails_to_import_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = FakeDistribution("collectrules-broken", "0.1", broken=ImportError("no module named x"))
    installed(monkeypatch, broken, FakeDistribution("collectrules-pigeon", "1.2.3", pigeon=PigeonPlugin()))
    pm = get_plugin_manager()
    [problem] = pm.load_problems
    # the location is the innermost frame outside the import machinery: here, FakeEntryPoint.load
    assert re.fullmatch(r"plugin 'broken' failed to load: ImportError: no module named x "
                        r"\(test_plugins\.py:\d+\)", problem)
    assert pm.get_plugin("pigeon") is not None


# --------------------------------------------------------------------------------------------------
# hook implementations that do not fit
# --------------------------------------------------------------------------------------------------


class TypoPlugin:
    @hookimpl
    def collectrules_register_channel(self, register: Callable[[Channel], None]) -> None:
        register(Channel("typo", "never registered"))


def test_an_unknown_hook_leaves_the_plugin_out_with_a_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, FakeDistribution("collectrules-typo", "0.1", typo=TypoPlugin()),
              FakeDistribution("collectrules-pigeon", "1.2.3", pigeon=PigeonPlugin()))
    pm = get_plugin_manager()  # pm.check_pending() alone would raise here
    assert pm.load_problems == [
        "plugin 'typo' implements unknown hook 'collectrules_register_channel' (did you mean "
        "'collectrules_register_channels'?); the plugin was not loaded"]
    assert pm.get_plugin("typo") is None
    assert "typo" not in pm.origins
    assert "pigeon" in registry_from(pm).channels


def test_an_unknown_hook_far_from_any_name_gets_no_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unrelated:
        @hookimpl
        def on_payment(self) -> None:
            """Not a collectrules hook at all."""

    installed(monkeypatch, FakeDistribution("collectrules-unrelated", "0.1", unrelated=Unrelated()))
    assert get_plugin_manager().load_problems == [
        "plugin 'unrelated' implements unknown hook 'on_payment'; the plugin was not loaded"]


def test_an_optional_unknown_hook_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Forward:
        @hookimpl(optionalhook=True)
        def collectrules_register_dashboards(self) -> None:
            """A hook of a later collectrules version; harmless here."""

    installed(monkeypatch, FakeDistribution("collectrules-forward", "0.1", forward=Forward()))
    pm = get_plugin_manager()
    assert pm.load_problems == []
    assert pm.get_plugin("forward") is not None


def test_a_parameter_the_hook_does_not_pass_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class Misspelt:
        @hookimpl
        def collectrules_register_channels(self, regster: Callable[[Channel], None]) -> None:
            regster(Channel("misspelt", "never registered"))

    installed(monkeypatch, FakeDistribution("collectrules-misspelt", "0.1", misspelt=Misspelt()))
    pm = get_plugin_manager()
    assert pm.load_problems == [
        "plugin 'misspelt': hook 'collectrules_register_channels' asks for parameter 'regster', which the "
        "hook does not pass (did you mean 'register'?); it passes: register; the plugin was not loaded"]
    assert pm.get_plugin("misspelt") is None


def test_a_parameter_with_a_default_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    class Configurable:
        @hookimpl
        def collectrules_register_channels(self, register: Callable[[Channel], None],
                                           loud: bool = False) -> None:
            register(Channel("megaphone" if loud else "whisper", "A channel named by its default."))

    installed(monkeypatch, FakeDistribution("collectrules-configurable", "0.1", configurable=Configurable()))
    pm = get_plugin_manager()
    assert pm.load_problems == []
    assert "whisper" in registry_from(pm).channels


def test_other_pluggy_validation_errors_are_reported_by_plugin_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class NotAGenerator:
        @hookimpl(wrapper=True)
        def collectrules_register_channels(self, register: Callable[[Channel], None]) -> None:
            """A wrapper must yield; this one does not."""

    installed(monkeypatch, FakeDistribution("collectrules-wrapper", "0.1", wrapper=NotAGenerator()))
    pm = get_plugin_manager()
    [problem] = pm.load_problems
    assert problem.startswith("plugin 'wrapper' failed to load: PluginValidationError: Plugin 'wrapper' for "
                              "hook 'collectrules_register_channels'")
    assert "not a generator function" in problem
    assert "\n" not in problem
    assert pm.get_plugin("wrapper") is None


# --------------------------------------------------------------------------------------------------
# plugin folders and -p
# --------------------------------------------------------------------------------------------------

GOOD_PLUGIN = '''
from collectrules import hookimpl
from collectrules.registry import Channel


@hookimpl
def collectrules_register_channels(register):
    register(Channel("pigeon", "Carrier pigeon."))
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_broken_plugin_files_are_reported_and_the_others_load(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    write(folder, "a_missing_import.py", "import collectrules_no_such_module\n")
    write(folder, "b_syntax.py", "def collectrules_register_channels(:\n")
    write(folder, "c_raises.py", "\n\nraise RuntimeError('needs a licence key')\n")
    good = write(folder, "pigeon.py", GOOD_PLUGIN)
    write(folder, "_helpers.py", "raise RuntimeError('never imported: leading underscore')\n")
    pm = get_plugin_manager(autoload=False, plugin_dirs=[folder, tmp_path / "missing"])
    assert pm.load_problems == [
        "plugin 'a_missing_import' failed to load: ModuleNotFoundError: No module named "
        "'collectrules_no_such_module' (a_missing_import.py:1)",
        "plugin 'b_syntax' failed to load: SyntaxError: invalid syntax (b_syntax.py:1)",
        "plugin 'c_raises' failed to load: RuntimeError: needs a licence key (c_raises.py:3)",
    ]
    assert (pm.origins["pigeon"], pm.versions["pigeon"]) == (f"file {good}", str(good))
    assert registry_from(pm).channels["pigeon"].origin == "pigeon"


def test_a_plugin_name_can_be_taken_only_once(tmp_path: Path) -> None:
    first = write(tmp_path / "one", "pigeon.py", GOOD_PLUGIN)
    second = write(tmp_path / "two", "pigeon.py", GOOD_PLUGIN)
    pm = get_plugin_manager(autoload=False, plugin_dirs=[tmp_path / "one", tmp_path / "two"])
    assert pm.load_problems == [
        f"plugin name 'pigeon' from file {second} is already taken by file {first}; skipped"]


def test_modules_named_with_p_load_with_their_version(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    owl = GOOD_PLUGIN.replace("pigeon", "owl") + '\n__version__ = "2.0"\n'
    write(tmp_path, "collectrules_test_owl.py", owl)
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager(autoload=False, modules=["collectrules_test_owl", "collectrules_test_absent"])
    assert (pm.origins["collectrules_test_owl"], pm.versions["collectrules_test_owl"]) == ("-p", "2.0")
    # no location: the module was never found, so no plugin code ran
    assert pm.load_problems == ["plugin 'collectrules_test_absent' failed to load: ModuleNotFoundError: "
                                "No module named 'collectrules_test_absent'"]


# --------------------------------------------------------------------------------------------------
# registration hooks
# --------------------------------------------------------------------------------------------------


def test_two_plugins_registering_the_same_channel_is_an_error_naming_both(pm: PluginManager) -> None:
    class First:
        @hookimpl
        def collectrules_register_channels(self, register: Callable[[Channel], None]) -> None:
            register(Channel("sms", "SMS through provider one."))

    class Second:
        @hookimpl
        def collectrules_register_channels(self, register: Callable[[Channel], None]) -> None:
            register(Channel("sms", "SMS through provider two."))

    pm.register(First(), name="first")
    pm.register(Second(), name="second")
    with pytest.raises(PluginError) as caught:
        registry_from(pm)
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.hint) == (
        "CR702", "channel 'sms' is registered twice: by plugin 'second' and by plugin 'first'",
        "disable one of them with COLLECTRULES_DISABLE_PLUGINS=first")


def test_a_duplicate_function_name_is_an_error_naming_both(pm: PluginManager) -> None:
    class Money:
        @hookimpl
        def collectrules_register_functions(self, register: Callable[[Function], None]) -> None:
            register(Function("vat", (NUMBER,), DECIMAL, lambda x: x * Decimal("1.2"),
                              "Amount with VAT."))

    pm.register(Money(), name="money")
    pm.register(type("MoreMoney", (Money,), {})(), name="more_money")
    with pytest.raises(PluginError, match="function 'vat' is registered twice: by plugin 'more_money' and by "
                                          "plugin 'money'"):
        registry_from(pm)


def test_registering_the_wrong_kind_of_object_names_the_plugin(pm: PluginManager) -> None:
    class Confused:
        @hookimpl
        def collectrules_register_channels(self, register: Callable[[Any], None]) -> None:
            register(Metric("sms", "not a channel", "n/a"))

    pm.register(Confused(), name="confused")
    with pytest.raises(PluginError) as caught:
        registry_from(pm)
    assert caught.value.diagnostics[0].message == \
        "plugin 'confused' registered Metric as one of its channels; expected a Channel"


class EverythingPlugin:
    """Registers one item through every registration hook."""

    @hookimpl
    def collectrules_register_channels(self, register: Callable[[Channel], None]) -> None:
        register(Channel("pigeon", "Carrier pigeon."))

    @hookimpl
    def collectrules_register_scorers(self, register: Callable[[Scorer], None]) -> None:
        register(Scorer("constant", "Always 1.", {"type": "object"}, lambda params, compile_: lambda ctx: 1))

    @hookimpl
    def collectrules_register_functions(self, register: Callable[[Function], None]) -> None:
        register(Function("vat", (NUMBER,), DECIMAL, lambda x: x * Decimal("1.2"),
                          "Amount with VAT."))

    @hookimpl
    def collectrules_register_metrics(self, register: Callable[[Metric], None]) -> None:
        register(Metric("letters_per_cure", "Letters sent per cured account.", "letters / cures",
                        unit="count", higher_is_better=False))

    @hookimpl
    def collectrules_register_reporters(self, register: Callable[[Reporter], None]) -> None:
        register(Reporter("count", "Just the number of accounts.", lambda report: f"{report['accounts']}\n"))

    @hookimpl
    def collectrules_register_transports(self, register: Callable[[Transport], None]) -> None:
        register(Transport("null", "Accepts and drops every message.", {"type": "object"},
                           lambda params: lambda message: DeliveryResult("sent", reference="null")))

    @hookimpl
    def collectrules_register_commands(self, cli: click.Group) -> None:
        @cli.command("hello")
        def hello() -> None:
            """Say hello."""
            click.echo("hello from a plugin")


def test_every_registration_hook_reaches_the_registry_with_its_origin(pm: PluginManager) -> None:
    pm.register(EverythingPlugin(), name="everything")
    registry = registry_from(pm)
    assert registry.channels["pigeon"].origin == "everything"
    assert registry.scorers["constant"].prepare({}, lambda *a: None)(None) == 1
    vat = registry.functions.get("vat")
    assert vat is not None and vat.origin == "everything" and vat.impl(Decimal("10")) == Decimal("12.0")
    assert registry.metrics["letters_per_cure"].unit == "count"
    assert registry.reporters["count"].render({"accounts": 7}) == "7\n"
    assert registry.transports["null"].open({})({"to": "x"}) == DeliveryResult("sent", reference="null")


def test_describe_plugins_lists_hooks_and_registered_names(pm: PluginManager) -> None:
    pm.register(EverythingPlugin(), name="everything")
    pm.origins["everything"], pm.versions["everything"] = "-p", "3.1"
    [info] = describe_plugins(pm)
    assert (info.name, info.version, info.origin) == ("everything", "3.1", "-p")
    assert info.hooks == ("collectrules_register_channels", "collectrules_register_commands",
                          "collectrules_register_functions", "collectrules_register_metrics",
                          "collectrules_register_reporters", "collectrules_register_scorers",
                          "collectrules_register_transports")
    assert info.registered == {"channels": ["pigeon"], "scorers": ["constant"], "functions": ["vat"],
                               "metrics": ["letters_per_cure"], "reporters": ["count"],
                               "transports": ["null"]}


def test_the_builtin_plugins_are_the_default_plugins() -> None:
    pm = get_plugin_manager(autoload=False)
    assert sorted(pm.origins) == sorted(BUILTIN_NAMES)
    assert set(pm.origins.values()) == {"builtin"}
    assert set(pm.versions.values()) == {"builtin"}
    assert sorted(registry_from(pm).reporters) == ["csv", "html", "json", "md", "text"]
