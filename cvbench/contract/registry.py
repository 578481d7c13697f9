"""The plugin registry: built-ins first, then third-party entry points, loaded once.

Every plugin (the built-ins in ``plugins/`` included) is a module found through
the ``cvbench`` entry-point group and registered with pluggy. Its ``register_*``
hooks are called with a ``register(name, factory, summary="")`` bound to the
package the module came from, so a clash names both packages. A module that
fails to import is recorded with its error and every other plugin keeps
working. ``CVBENCH_DISABLE_PLUGINS=1`` skips every entry point outside the
``cvbench`` distribution, as pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` does.
"""

from __future__ import annotations

import difflib
import inspect
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

import pluggy

from ..errors import CvbenchError, PluginConflictError, PluginError, SpecError, UnknownPluginError
from . import hookspecs
from .conform import conform

BUILTIN_DISTRIBUTION = "cvbench"
DISABLE_ENV = "CVBENCH_DISABLE_PLUGINS"
KINDS: dict[str, str] = {
    "pretrainer": "register_pretrainers",
    "head": "register_heads",
    "loss": "register_losses",
    "dataset": "register_datasets",
    "augmentation": "register_augmentations",
    "preset": "register_presets",
    "metric": "register_metrics",
    "sampler": "register_samplers",
    "logger": "register_loggers",
}
DATA_KINDS = ("preset",)  # registered values are plain data, not factories


@dataclass(frozen=True)
class Plugin:
    """One registered name: what builds it and where it came from."""

    kind: str
    name: str
    factory: Callable[..., Any]
    summary: str
    source: str
    entry_point: str = ""  # "name = module" of the entry point that registered it; "" when added directly

    def origin(self) -> str:
        """Where the plugin comes from, for messages: its package and entry point."""
        return f"package {self.source!r}" + (f", entry point {self.entry_point!r}" if self.entry_point else "")


@dataclass(frozen=True)
class LoadFailure:
    """A plugin module that could not be imported or whose hook raised."""

    source: str
    entry_point: str
    error: str


class Registry:
    """Names of every kind of plugin, mapped to their factories."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, dict[str, Plugin]] = {kind: {} for kind in KINDS}
        self.failures: list[LoadFailure] = []

    def load_entry_points(self) -> None:
        """Register every module of the ``cvbench`` entry-point group, built-ins first."""
        found = list(entry_points(group=hookspecs.PROJECT))
        builtin = [ep for ep in found if _distribution(ep) == BUILTIN_DISTRIBUTION]
        third_party = [ep for ep in found if _distribution(ep) != BUILTIN_DISTRIBUTION]
        if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
            third_party = []
        for ep in sorted(builtin, key=lambda e: e.name) + sorted(third_party, key=lambda e: (_distribution(e), e.name)):
            source = _distribution(ep)
            try:
                module = ep.load()
            except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
                self.failures.append(LoadFailure(source, f"{ep.name} = {ep.value}", f"{type(exc).__name__}: {exc}"))
                continue
            self.add(module, source=source, name=f"{source}:{ep.name}", entry_point=f"{ep.name} = {ep.value}")

    def add(self, plugin: object, source: str, name: str | None = None, entry_point: str = "") -> None:
        """Register a plugin object (a module or any object with hook implementations).

        A clash with an already registered name raises :class:`PluginConflictError`
        naming both sources; in that case nothing of ``plugin`` stays registered.
        """
        name = name or source
        self._register_checked(plugin, name, source, entry_point)
        staged: list[Plugin] = []
        try:
            for kind, hook_name in KINDS.items():
                for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(register=_collector(kind, source, staged, entry_point))
            seen: dict[tuple[str, str], Plugin] = {}
            for entry in staged:
                key = (entry.kind, entry.name)
                other = self.plugins[entry.kind].get(entry.name) or seen.get(key)
                if other is not None:
                    raise PluginConflictError(
                        f"{entry.kind} {entry.name!r} is registered twice: by {other.source!r} and by {entry.source!r}; "
                        "uninstall one of the packages or rename the plugin")
                seen[key] = entry
        except PluginConflictError:
            self.manager.unregister(plugin)
            raise
        except (Exception, SystemExit) as exc:
            self.manager.unregister(plugin)
            self.failures.append(LoadFailure(source, entry_point or name, f"{type(exc).__name__}: {exc}"))
            return
        for entry in staged:
            self.plugins[entry.kind][entry.name] = entry

    def _register_checked(self, plugin: object, name: str, source: str, entry_point: str) -> None:
        """Register with pluggy, refusing a hook no spec declares (``register_head``) or with the wrong arguments.

        pluggy accepts an unknown hook until :meth:`pluggy.PluginManager.check_pending`
        is called, and would then never call it: the plugin's names would
        silently be missing.
        """
        origin = f"plugin module {_module_name(plugin)!r} (package {source!r}" + (
            f", entry point {entry_point!r})" if entry_point else ")")
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:  # a known hook whose arguments differ from its spec's
            detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise PluginError(f"{origin}: {detail} (every hook takes the one argument `register`)") from exc
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            unknown = sorted({caller.name for caller in self.manager.get_hookcallers(plugin) or []
                              if not caller.has_spec()})
            self.manager.unregister(plugin)
            hooks = list(KINDS.values())
            guesses = [difflib.get_close_matches(hook, hooks, n=1) for hook in unknown]
            hint = "".join(f"; did you mean {guess[0]!r}?" for guess in guesses if guess)
            raise PluginError(f"{origin} implements unknown hook {', '.join(map(repr, unknown)) or '?'}{hint} "
                              f"The hooks are: {', '.join(hooks)} ({DISABLE_ENV}=1 skips third-party plugins)") from exc

    def remove(self, source: str) -> None:
        """Unregister everything a source registered (tests add a plugin, then remove it)."""
        for kind in self.plugins.values():
            for name in [n for n, p in kind.items() if p.source == source]:
                del kind[name]
        for plugin_name, plugin in list(self.manager.list_name_plugin()):
            if plugin_name == source or plugin_name.startswith(f"{source}:"):
                self.manager.unregister(plugin)

    def get(self, kind: str, name: str) -> Plugin:
        """The plugin of this kind and name, or an error listing the names there are."""
        if kind not in KINDS:
            raise UnknownPluginError(f"unknown plugin kind {kind!r}; kinds are: {', '.join(KINDS)}")
        registered = self.plugins[kind]
        if name in registered:
            return registered[name]
        names = sorted(registered)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        broken = [f"{f.entry_point!r} of package {f.source!r} ({f.error})" for f in self.failures]
        note = f" (plugin modules that failed to load: {'; '.join(broken)})" if broken else ""
        plural = KINDS[kind].removeprefix("register_")  # the hook names the kind in the plural: losses
        raise UnknownPluginError(f"unknown {kind} {name!r}{hint} Registered {plural}: "
                                 f"{', '.join(names) or 'none'}{note}")

    def create(self, kind: str, name: str, *args: Any, **options: Any) -> Any:
        """Build a registered plugin; options it does not accept fail before it runs."""
        plugin = self.get(kind, name)
        if kind in DATA_KINDS:
            return dict(plugin.factory)
        check_options(plugin, args, options)
        if inspect.isclass(plugin.factory) and inspect.isabstract(plugin.factory):
            missing = ", ".join(f"{method}()" for method in sorted(plugin.factory.__abstractmethods__))
            raise PluginError(f"{kind} {name!r} ({plugin.origin()}) does not implement {missing}, which every "
                              f"{kind} must (docs/plugins.md)")
        try:
            built = plugin.factory(*args, **options)
        except CvbenchError:
            raise
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{kind} {name!r} ({plugin.origin()}) rejected its options {options or '{}'}: "
                            f"{type(exc).__name__}: {exc}") from exc
        except (Exception, SystemExit) as exc:  # a plugin's own bug: named, not a traceback from inside it
            raise PluginError(f"{kind} {name!r} ({plugin.origin()}) failed while being built: "
                              f"{type(exc).__name__}: {exc}") from exc
        expected = conform(kind, built)
        if expected:
            raise PluginError(f"{kind} {name!r} ({plugin.origin()}) built {type(built).__name__} {_short(built)}; "
                              f"expected {expected} (see docs/plugins.md)")
        return built


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__
        text = "<unprintable>"
    return text if len(text) <= limit else text[:limit] + "..."


def check_options(plugin: Plugin, args: tuple, options: dict[str, Any]) -> None:
    """Fail with the accepted option names when ``options`` holds one the factory lacks."""
    try:
        signature = inspect.signature(plugin.factory)
    except (TypeError, ValueError):
        return
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    options_accepted = accepted[len(args):]
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise SpecError(f"{plugin.kind} {plugin.name!r} has no option {', '.join(map(repr, unknown))}; "
                        f"its options are: {', '.join(options_accepted) or 'none'}")


def _collector(kind: str, source: str, staged: list[Plugin], entry_point: str = "") -> Callable[..., None]:
    def register(name: str, factory: Callable[..., Any], summary: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {kind} name must be a non-empty string, got {name!r}")
        if kind in DATA_KINDS:
            if not isinstance(factory, dict):
                raise ValueError(f"{kind} {name!r} must be registered as a dict, got {type(factory).__name__}")
        elif not callable(factory):
            raise ValueError(f"the factory of {kind} {name!r} is not callable")
        summary = summary or ("" if kind in DATA_KINDS else _first_line(factory))
        staged.append(Plugin(kind, name, factory, summary, source, entry_point))

    return register


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _module_name(plugin: object) -> str:
    """A plugin module's name, or the class of a plugin object."""
    return getattr(plugin, "__name__", None) or type(plugin).__qualname__


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.module.split(".")[0]


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        registry = Registry()
        registry.load_entry_points()
        _registry = registry
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry so the next use loads entry points again."""
    global _registry
    _registry = None


def plugins() -> dict[str, list[str]]:
    """Registered names per kind: ``{"pretrainer": [...], "head": [...], "loss": [...], "dataset": [...], ...}``."""
    registry = get_registry()
    return {kind: sorted(registry.plugins[kind]) for kind in KINDS}


def create(kind: str, name: str, *args: Any, **options: Any) -> Any:
    """Build any registered plugin: ``create("head", name, in_channels, feature_hw, dim, **options)``."""
    return get_registry().create(kind, name, *args, **options)
