"""``collectrules plugins``, plugin commands (``collectrules_register_commands``) and a fast ``--help``."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from collectrules import hookimpl
from collectrules.cli import BUILTIN_COMMAND_MODULES, BUILTIN_SHORT_HELP, _Group, builtin_commands, cli
from collectrules.cli.plugins import plugin_commands
from collectrules.plugins import DEFAULT_PLUGINS, PluginManager, get_plugin_manager


@pytest.fixture(autouse=True)
def _no_plugin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLLECTRULES_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", raising=False)


def fresh_group() -> _Group:
    """A root group like ``collectrules``'s, with nothing loaded yet."""
    return _Group("collectrules", context_settings={"max_content_width": 100})


class FakeEntryPoint:
    group = "collectrules"

    def __init__(self, name: str, plugin: object) -> None:
        self.name = name
        self._plugin = plugin

    def load(self) -> object:
        return self._plugin


class FakeDistribution:
    def __init__(self, name: str, version: str, **plugins: object) -> None:
        self.metadata = {"Name": name, "Version": version}
        self.entry_points = [FakeEntryPoint(ep_name, plugin) for ep_name, plugin in plugins.items()]


class HelloPlugin:
    @hookimpl
    def collectrules_register_commands(self, cli: click.Group) -> None:
        @cli.command("hello")
        @click.argument("name", default="world")
        def hello(name: str) -> None:
            """Greet someone from a plugin."""
            click.echo(f"hello {name}")

        @cli.command("validate")
        def shadow() -> None:
            """Would replace the built-in validate; must not."""


def install(monkeypatch: pytest.MonkeyPatch, *dists: FakeDistribution) -> None:
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))


# --------------------------------------------------------------------------------------------------
# collectrules plugins
# --------------------------------------------------------------------------------------------------


def test_the_sms_gateway_package_is_discovered_through_its_entry_point() -> None:
    pm = get_plugin_manager()
    assert pm.origins["sms_gateway"] == "entry point (collectrules-sms-gateway)"
    assert pm.versions["sms_gateway"] == importlib.metadata.version("collectrules-sms-gateway")
    result = CliRunner().invoke(cli, ["plugins", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [entry] = [p for p in report["plugins"] if p["name"] == "sms_gateway"]
    assert entry == {"name": "sms_gateway", "version": pm.versions["sms_gateway"],
                     "origin": "entry point (collectrules-sms-gateway)",
                     "hooks": ["collectrules_register_transports"],
                     "registered": {"transports": ["sms_gateway"]}}
    assert {p["name"] for p in report["plugins"]} >= {"channels", "reporters", "sms_gateway"}
    assert report["problems"] == []


PIGEON = '''
from collectrules import hookimpl
from collectrules.registry import Channel


@hookimpl
def collectrules_register_channels(register):
    register(Channel("pigeon", "Carrier pigeon."))
'''


def test_plugins_text_lists_each_plugin_and_the_problems(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGINS", "metrics")
    folder = tmp_path / "plugins"
    folder.mkdir()
    good = folder / "pigeon.py"
    good.write_text(PIGEON, encoding="utf-8")
    (folder / "broken.py").write_text("import collectrules_no_such_module\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["plugins", "--plugins-dir", str(folder)])
    assert result.exit_code == 1
    assert textwrap.dedent(f"""\
        pigeon {good}
          from:     file {good}
          hooks:    collectrules_register_channels
          channels: pigeon
        """) in result.stdout
    assert result.stdout.endswith(
        "disabled: metrics\n"
        "problems:\n"
        "  plugin 'broken' failed to load: ModuleNotFoundError: No module named "
        "'collectrules_no_such_module' (broken.py:1)\n"
        # the default plugins, less the disabled one, plus the folder's good plugin
        f"{len(DEFAULT_PLUGINS)} plugins loaded, 1 problem\n")


def test_plugins_reports_two_plugins_registering_one_name(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "1")
    (tmp_path / "sms_one.py").write_text(PIGEON.replace('"pigeon"', '"sms"'), encoding="utf-8")
    result = CliRunner().invoke(cli, ["plugins", "--format", "json", "--plugins-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        "channel 'sms' is registered twice: by plugin 'channels' and by plugin 'sms_one' "
        "(hint: disable one of them with COLLECTRULES_DISABLE_PLUGINS=sms_one)"]


def test_plugins_loads_modules_named_with_p(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "1")
    (tmp_path / "collectrules_test_pigeon.py").write_text(PIGEON + '__version__ = "0.3"\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["plugins", "--format", "json", "-p", "collectrules_test_pigeon"])
    assert result.exit_code == 0, result.output
    [entry] = [p for p in json.loads(result.stdout)["plugins"] if p["name"] == "collectrules_test_pigeon"]
    assert (entry["version"], entry["origin"], entry["registered"]) == ("0.3", "-p", {"channels": ["pigeon"]})


def test_plugins_reports_a_registration_hook_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    class Flaky:
        @hookimpl
        def collectrules_register_channels(self, register: object) -> None:
            raise RuntimeError("provider list unavailable")

    install(monkeypatch, FakeDistribution("collectrules-flaky", "2.0", flaky=Flaky()))
    result = CliRunner().invoke(cli, ["plugins", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["problems"] == ["plugin 'flaky' failed in collectrules_register_channels: RuntimeError: "
                                  "provider list unavailable"]
    [entry] = [p for p in report["plugins"] if p["name"] == "flaky"]
    assert entry["registered"] == {"channels": []}


# --------------------------------------------------------------------------------------------------
# commands added by plugins
# --------------------------------------------------------------------------------------------------


def test_a_plugin_command_runs_and_cannot_replace_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("collectrules-hello", "1.0", hello=HelloPlugin()))
    group = fresh_group()
    result = CliRunner().invoke(group, ["hello", "plugins"])
    assert (result.exit_code, result.output) == (0, "hello plugins\n")
    result = CliRunner().invoke(group, ["validate", "--help"])
    assert "Validate policy files (files, folders or globs)" in result.output
    assert group.commands["validate"] is builtin_commands()["validate"]


def test_plugin_commands_are_attributed_and_clashes_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("collectrules-hello", "1.0", hello=HelloPlugin()))
    commands, problems = plugin_commands(get_plugin_manager(), taken=dict.fromkeys(BUILTIN_COMMAND_MODULES))
    assert [(plugin, command.name) for plugin, command in commands] == [("hello", "hello")]
    assert problems == [
        "plugin 'hello' adds command 'validate', which is already a built-in command; skipped"]
    report = json.loads(CliRunner().invoke(cli, ["plugins", "--format", "json"]).stdout)
    [entry] = [p for p in report["plugins"] if p["name"] == "hello"]
    assert entry["registered"] == {"commands": ["hello"]}
    assert problems[0] in report["problems"]


def test_a_plugin_whose_command_hook_raises_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        @hookimpl
        def collectrules_register_commands(self, cli: click.Group) -> None:
            raise RuntimeError("needs a licence key")

    pm = PluginManager()
    from collectrules import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(Broken(), name="broken")
    assert plugin_commands(pm) == ([], ["plugin 'broken' failed to add its commands: RuntimeError: needs a "
                                        "licence key"])


def test_running_a_builtin_command_does_not_discover_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_discovery() -> list[object]:
        raise AssertionError("plugins were discovered")

    monkeypatch.setattr(importlib.metadata, "distributions", no_discovery)
    result = CliRunner().invoke(fresh_group(), ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["$schema"].startswith("https://json-schema.org/")


def test_help_lists_builtin_and_plugin_commands_like_click_would(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("collectrules-hello", "1.0", hello=HelloPlugin()))
    lazy = CliRunner().invoke(fresh_group(), ["--help"]).output
    eager_group = fresh_group()
    for command in builtin_commands().values():
        eager_group.add_command(command)
    eager = CliRunner().invoke(eager_group, ["--help"]).output
    assert lazy == eager
    assert "  hello     Greet someone from a plugin.\n" in lazy
    assert all(f"  {name} " in lazy for name in BUILTIN_COMMAND_MODULES)


def test_the_short_help_table_matches_the_commands() -> None:
    commands = builtin_commands()
    assert sorted(BUILTIN_SHORT_HELP) == sorted(BUILTIN_COMMAND_MODULES)
    for name in BUILTIN_SHORT_HELP:
        help_text = commands[name].help or ""
        assert BUILTIN_SHORT_HELP[name] == help_text.strip().split("\n\n")[0].replace("\n", " "), name


def test_help_imports_no_command_module() -> None:
    code = ("import sys\nfrom collectrules.cli import main\nmain(['--help'])\n"
            "heavy = [m for m in sys.modules if m.startswith(('collectrules.policy', 'collectrules.engine', "
            "'jsonschema', 'lark', 'polars', 'pyarrow'))]\nprint(sorted(heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.splitlines()[-1] == "[]", \
        "--help imported a command module: give it an entry in collectrules.cli.BUILTIN_SHORT_HELP"

