"""Plugin discovery, in one place.

Order: hook specifications → entry points in group ``collectrules`` (unless autoload is off) → ``.py``
files in plugin folders → modules named with ``-p`` → the default plugins. A plugin that fails to import
is recorded by name in ``pm.load_problems`` and the others still load. ``COLLECTRULES_DISABLE_PLUGINS=a,b``
blocks plugins by name; ``COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "collectrules"

#: the built-in plugins; they use the same hooks as anyone else's
DEFAULT_PLUGINS: tuple[str, ...] = (
    "collectrules.builtin.channels",
    "collectrules.builtin.functions",
    "collectrules.builtin.scorers",
    "collectrules.builtin.metrics",
)


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where each plugin came from and what failed to load."""

    def __init__(self) -> None:
        super().__init__("collectrules")
        self.load_problems: list[str] = []
        self.origins: dict[str, str] = {}


def _disabled_from_env() -> set[str]:
    raw = os.environ.get("COLLECTRULES_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _autoload_from_env() -> bool:
    return os.environ.get("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("1", "true", "yes")


def _problem(pm: PluginManager, name: str, exc: BaseException) -> None:
    last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(last.filename).name}:{last.lineno})" if last else ""
    pm.load_problems.append(f"plugin {name!r} failed to load: {type(exc).__name__}: {exc}{where}")


def _register(pm: PluginManager, plugin: object, name: str, origin: str) -> None:
    if pm.is_blocked(name):
        return
    if pm.has_plugin(name):
        pm.load_problems.append(f"plugin name {name!r} from {origin} is already taken by "
                                f"{pm.origins.get(name, 'another plugin')}; skipped")
        return
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        _problem(pm, name, exc)
        return
    pm.origins[name] = origin


def _load_entry_points(pm: PluginManager) -> None:
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                _problem(pm, ep.name, exc)
                continue
            version = dist.metadata["Version"] if dist.metadata else "?"
            _register(pm, plugin, ep.name, f"entry point ({dist.metadata['Name']} {version})")


def _load_file(pm: PluginManager, path: Path) -> None:
    name = path.stem
    if pm.is_blocked(name):
        return
    module_name = f"collectrules_local_plugins.{path.parent.name}.{name}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
        sys.modules.pop(module_name, None)
        _problem(pm, name, exc)
        return
    _register(pm, module, name, f"file {path}")


def _load_module(pm: PluginManager, name: str, origin: str) -> None:
    short = name.rsplit(".", 1)[-1] if name.startswith("collectrules.builtin.") else name
    if pm.is_blocked(short) or pm.is_blocked(name):
        return
    try:
        module: ModuleType = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
        _problem(pm, name, exc)
        return
    _register(pm, module, short, origin)


def get_plugin_manager(*, autoload: bool | None = None, plugin_dirs: Iterable[str | Path] = (),
                       modules: Sequence[str] = (), disabled: Iterable[str] = ()) -> PluginManager:
    """Build a plugin manager with every plugin discovered; see the module docstring for the order."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    for name in {*_disabled_from_env(), *disabled}:
        pm.set_blocked(name)
    if autoload is None:
        autoload = _autoload_from_env()
    if autoload:
        _load_entry_points(pm)
    for folder in plugin_dirs:
        folder = Path(folder)
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if not path.name.startswith("_"):
                    _load_file(pm, path)
    for name in modules:
        _load_module(pm, name, "-p")
    for name in DEFAULT_PLUGINS:
        _load_module(pm, name, "builtin")
    pm.check_pending()
    return pm
