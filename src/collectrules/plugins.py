"""Plugin discovery, in one place.

Order: hook specifications → entry points in group ``collectrules`` (unless autoload is off) → ``.py``
files in plugin folders → modules named with ``-p`` → the default plugins → a check that every hook
implementation names a known hook.

A broken plugin never stops the others. Each of these is recorded by name in ``pm.load_problems`` and the
plugin is left out: it fails to import (ImportError, SyntaxError, anything it raises at import), a hook
implementation takes a parameter its hook does not provide, or it implements a hook that does not exist
(usually a typo such as ``collectrules_register_channel``; the problem suggests the closest hook name).

``COLLECTRULES_DISABLE_PLUGINS=a,b`` blocks plugins by name; ``COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD=1``
skips entry points. ``pm.origins`` says where each plugin came from and ``pm.versions`` which version it is.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "collectrules"

#: the built-in plugins; they use the same hooks as anyone else's
DEFAULT_PLUGINS: tuple[str, ...] = (
    "collectrules.builtin.channels",
    "collectrules.builtin.functions",
    "collectrules.builtin.scorers",
    "collectrules.builtin.metrics",
    "collectrules.builtin.reporters",
    "collectrules.builtin.transports",
)

#: the version shown for the default plugins
BUILTIN_VERSION = "builtin"

#: the hook names plugins may implement, from :mod:`collectrules.hookspecs`
HOOK_NAMES: tuple[str, ...] = tuple(name for name in vars(hookspecs) if name.startswith("collectrules_"))


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where each plugin came from and what failed to load."""

    def __init__(self) -> None:
        super().__init__("collectrules")
        #: one line per plugin that was left out, naming the plugin and what was wrong
        self.load_problems: list[str] = []
        #: plugin name → where it came from (``builtin``, ``entry point (dist)``, ``file PATH``, ``-p``)
        self.origins: dict[str, str] = {}
        #: plugin name → its distribution's version, ``builtin``, or the file path of a plugin-folder file
        self.versions: dict[str, str] = {}


def _disabled_from_env() -> set[str]:
    raw = os.environ.get("COLLECTRULES_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _autoload_from_env() -> bool:
    return os.environ.get("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("1", "true", "yes")


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _where(exc: BaseException) -> str:
    """``file:line`` of the plugin code that raised, skipping the import machinery's own frames."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({Path(exc.filename).name}:{exc.lineno})"
    machinery = (__file__, os.path.dirname(importlib.__file__) + os.sep)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(("<frozen", *machinery))]
    return f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def _problem(pm: PluginManager, name: str, exc: BaseException) -> None:
    # a SyntaxError's str() repeats the file and line that _where() gives; pluggy's messages span lines
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    message = " ".join(str(text).split())
    pm.load_problems.append(f"plugin {name!r} failed to load: {type(exc).__name__}: {message}{_where(exc)}")


def _signature_problems(pm: PluginManager, plugin: object, name: str) -> list[str]:
    """Hook implementations asking for a parameter their hook does not pass, described for people.

    pluggy rejects these too, but its message spans lines and does not suggest the intended parameter.
    """
    problems = []
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        hook_name = opts.get("specname") or attr
        caller = getattr(pm.hook, hook_name, None)
        if caller is None or caller.spec is None:
            continue  # unknown hooks are reported after every plugin is in (see _drop_unknown_hooks)
        try:
            parameters = inspect.signature(getattr(plugin, attr)).parameters
        except (TypeError, ValueError):
            continue  # not introspectable: leave the verdict to pluggy
        accepted = (*caller.spec.argnames, *caller.spec.kwargnames)
        for parameter in parameters.values():
            if parameter.name in accepted or parameter.default is not inspect.Parameter.empty:
                continue
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if parameter.name == "self":  # a hook defined on a class registered unbound, as pluggy allows
                continue
            suggestion = _did_you_mean(parameter.name, accepted)
            problems.append(f"plugin {name!r}: hook {hook_name!r} asks for parameter {parameter.name!r}, "
                            f"which the hook does not pass{suggestion}; it passes: "
                            f"{', '.join(accepted) or 'nothing'}; the plugin was not loaded")
    return problems


def _register(pm: PluginManager, plugin: object, name: str, origin: str, version: str) -> None:
    if pm.is_blocked(name):
        return
    if pm.has_plugin(name):
        pm.load_problems.append(f"plugin name {name!r} from {origin} is already taken by "
                                f"{pm.origins.get(name, 'another plugin')}; skipped")
        return
    signature_problems = _signature_problems(pm, plugin, name)
    if signature_problems:
        pm.load_problems.extend(signature_problems)
        return
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        # older pluggy versions leave a half-registered plugin behind when validation fails
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        _problem(pm, name, exc)
        return
    pm.origins[name] = origin
    pm.versions[name] = version


def _load_entry_points(pm: PluginManager) -> None:
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        metadata = dist.metadata
        dist_name = metadata["Name"] if metadata else "?"
        key = re.sub(r"[-_.]+", "-", dist_name).lower()
        if key in seen:
            # one distribution found twice on sys.path (an editable install's source folder holds its
            # metadata too); the first is the one Python imports from
            continue
        seen.add(key)
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                _problem(pm, ep.name, exc)
                continue
            version = metadata["Version"] if metadata else "?"
            _register(pm, plugin, ep.name, f"entry point ({dist_name})", version)


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
    _register(pm, module, name, f"file {path}", str(path))


def _module_version(module: ModuleType) -> str:
    declared = getattr(module, "__version__", None)
    if isinstance(declared, str):
        return declared
    top = module.__name__.split(".", 1)[0]
    for dist_name in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _load_module(pm: PluginManager, name: str, origin: str) -> None:
    builtin = name.startswith("collectrules.builtin.")
    short = name.rsplit(".", 1)[-1] if builtin else name
    if pm.is_blocked(short) or pm.is_blocked(name):
        return
    try:
        module: ModuleType = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
        _problem(pm, name, exc)
        return
    _register(pm, module, short, origin, BUILTIN_VERSION if builtin else _module_version(module))


def _drop_unknown_hooks(pm: PluginManager) -> None:
    """Leave out every plugin implementing a hook that has no specification, naming plugin and hook.

    This is ``pm.check_pending()`` without the exception: one plugin's typo must not stop the others.
    Implementations marked ``optionalhook=True`` are allowed, as pluggy allows them.
    """
    unknown: dict[str, list[str]] = {}
    for hook_name, caller in list(vars(pm.hook).items()):
        if hook_name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                unknown.setdefault(impl.plugin_name, []).append(hook_name)
    for plugin_name, hook_names in unknown.items():
        pm.unregister(name=plugin_name)
        pm.origins.pop(plugin_name, None)
        pm.versions.pop(plugin_name, None)
        for hook_name in sorted(hook_names):
            pm.load_problems.append(f"plugin {plugin_name!r} implements unknown hook {hook_name!r}"
                                    f"{_did_you_mean(hook_name, HOOK_NAMES)}; the plugin was not loaded")


def get_plugin_manager(*, autoload: bool | None = None, plugin_dirs: Iterable[str | Path] = (),
                       modules: Sequence[str] = (), disabled: Iterable[str] = ()) -> PluginManager:
    """Build a plugin manager with every plugin discovered; see the module docstring for the order.

    :param autoload: load entry points; ``None`` means yes unless ``COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD``
        is set.
    :param plugin_dirs: folders whose ``*.py`` files (not starting with ``_``) are plugins; missing
        folders are skipped.
    :param modules: importable module names to load as plugins (the CLI's ``-p``).
    :param disabled: plugin names to block, besides ``COLLECTRULES_DISABLE_PLUGINS``.
    """
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
    _drop_unknown_hooks(pm)
    pm.check_pending()  # cannot fail now; kept so a regression in the line above is loud
    return pm


# --------------------------------------------------------------------------------------------------
# Describing what is loaded (for ``collectrules plugins``)
# --------------------------------------------------------------------------------------------------

#: the registration hooks whose items ``describe_plugins`` lists, by the kind of item they register
REGISTERED_KINDS: tuple[str, ...] = ("channels", "scorers", "functions", "metrics", "reporters", "transports")


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, as ``collectrules plugins`` shows it."""

    #: the name it is registered (and can be disabled) under
    name: str
    #: distribution version for entry points, ``builtin``, or the file path of a plugin-folder file
    version: str
    #: where it came from (``pm.origins``)
    origin: str
    #: the hooks it implements, sorted
    hooks: tuple[str, ...]
    #: kind (``channels``, ``transports`` …) → the names it registered, in registration order
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: registration hooks of the plugin that raised, described
    problems: tuple[str, ...] = ()


def describe_plugins(pm: PluginManager) -> list[PluginInfo]:
    """Every registered plugin with its version, origin, hooks and the names each registration hook gave.

    Each plugin's registration hooks are called with a recording ``register``, so a plugin is listed even
    when its names clash with another's (the clash itself is what :func:`~collectrules.registry.registry_from`
    reports). A registration hook that raises is described in the plugin's ``problems``.
    """
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        registered: dict[str, list[str]] = {}
        problems: list[str] = []
        for kind in REGISTERED_KINDS:
            caller = getattr(pm.hook, f"collectrules_register_{kind}")
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                names: list[str] = []
                recorder = {"register": lambda item, names=names: names.append(_item_name(item))}
                try:
                    # pass only what the implementation asks for, as pluggy does
                    impl.function(**{k: v for k, v in recorder.items() if k in impl.argnames})
                except Exception as exc:  # noqa: BLE001 - describe the failure, keep listing
                    problems.append(f"plugin {name!r} failed in {caller.name}: {type(exc).__name__}: {exc}")
                registered[kind] = names
        infos.append(PluginInfo(name, pm.versions.get(name, "unknown"), pm.origins.get(name, "unknown"),
                                hooks, registered, tuple(problems)))
    return infos


def blocked_plugins(pm: PluginManager) -> list[str]:
    """The names blocked by ``COLLECTRULES_DISABLE_PLUGINS`` or ``disabled``."""
    return sorted(name for name, plugin in pm.list_name_plugin() if plugin is None)


def _item_name(item: Any) -> str:
    return str(getattr(item, "name", item))
