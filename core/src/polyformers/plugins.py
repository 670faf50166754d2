"""Plugin discovery and activation: the microkernel's loader.

Discovery reads entry-point metadata only, so it imports no plugin code:

- ``polyformers.plugins``: ``<plugin name> = <hook module>``, the module implementing the hooks of
  :mod:`polyformers.hookspecs`;
- ``polyformers.model_types``: ``<model_type> = <hook module>``, the model types it provides;
- ``polyformers.classes``: ``<ClassName> = <hook module>``, the public classes it provides (so
  ``polyformers.BertModel`` finds its plugin without importing any).

A plugin is activated (its hook module imported, its API version checked, its hooks called) the
first time one of its model types or class names is used. A plugin that fails, in any way, is
marked failed; only its own model types are affected, and using them raises the recorded error.

Discovery never imports, so a plugin whose import hangs holds up only the first use of its own
model types: ``import polyformers``, :func:`list_plugins` and every other plugin never wait for it
(there is no import timeout: an import cannot be abandoned safely half-way).

A plugin may register (``AutoConfig.register`` ...) only the model types it declares: registrations
it makes for another plugin's type while being activated are undone, and the plugin is marked
failed. (Plugins are installed code; this stops a plugin taking over ``bert`` by mistake or by a
stale copy, not code that sets out to patch polyformers' internals.)

When two distributions claim one model type, using it raises :class:`ModelTypeConflictError`
until one is chosen, by :func:`prefer` or by the environment variable ``POLYFORMERS_PREFER``
(``"bert=polyformers-bert,detr=my-detr"``). Install order never decides.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    ModelTypeConflictError,
    PluginAPIVersionError,
    PluginLoadError,
    PluginNotInstalledError,
    RegistrationError,
)
from .registry import (
    DEFAULT_EXTRAS,
    FRAMEWORKS,
    MANUAL_SOURCE,
    PROCESSOR_KINDS,
    REGISTRY,
    TASKS,
    Entry,
    check_dotted_path,
)

logger = logging.getLogger(__name__)

PLUGIN_API_VERSION = 1
"""The plugin API this core speaks. A plugin sets ``POLYFORMERS_PLUGIN_API`` in its hook module."""
SUPPORTED_PLUGIN_APIS = range(1, 2)
"""Plugin API versions this core accepts (``min <= v < max``)."""

GROUP_PLUGINS = "polyformers.plugins"
GROUP_MODEL_TYPES = "polyformers.model_types"
GROUP_CLASSES = "polyformers.classes"
PREFER_ENV = "POLYFORMERS_PREFER"

# Families polyformers ships (or will ship) as plugins: used to tell users what to install.
KNOWN_FAMILIES: dict[str, tuple[str, str]] = {
    # model_type: (distribution, class-name stem)
    "bert": ("polyformers-bert", "Bert"),
    "wav2vec2": ("polyformers-wav2vec2", "Wav2Vec2"),
    "detr": ("polyformers-detr", "Detr"),
}


@dataclass
class PluginInfo:
    """An installed plugin, as :func:`list_plugins` reports it."""

    name: str
    module: str
    distribution: str
    version: str
    model_types: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    frameworks: list[str] = field(default_factory=list)
    extras: dict[str, str] = field(default_factory=dict)
    status: str = "inactive"  # inactive | active | failed
    error: PluginLoadError | None = None

    def __str__(self) -> str:
        line = f"{self.distribution} {self.version} ({self.name}): {self.status}; model types {', '.join(self.model_types) or '-'}"
        if self.frameworks:
            line += f"; frameworks {', '.join(self.frameworks)}"
        if self.error is not None:
            line += f"; error: {str(self.error).splitlines()[0]}"
        return line


_lock = threading.RLock()
_plugins: dict[tuple[str, str], PluginInfo] | None = None  # by (normalised distribution, plugin name)
_preferences: dict[str, str] = {}
_pm = None  # the pluggy PluginManager, created on first activation


def _norm(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _dist_name(dist: Any, fallback: str) -> str:
    """A distribution's name; one whose METADATA lacks it is named by its path (never by the entry point)."""
    if dist is None:
        return fallback
    name = dist.metadata["Name"]
    return name if isinstance(name, str) and name else f"<unnamed distribution {getattr(dist, '_path', '?')}>"


def _entry_points() -> dict[str, list[Any]]:
    """Our groups' entry points. One distribution with an unreadable ``entry_points.txt`` must not
    hide every plugin (``importlib.metadata.entry_points()`` raises for all of them): it is then
    skipped, and reported once per discovery with its name, version and the parse error."""
    groups = (GROUP_PLUGINS, GROUP_MODEL_TYPES, GROUP_CLASSES)
    try:
        return {group: list(importlib.metadata.entry_points(group=group)) for group in groups}
    except Exception:  # noqa: BLE001 - a malformed file of some distribution; find which below
        pass
    found: dict[str, list[Any]] = {group: [] for group in groups}
    for dist in importlib.metadata.distributions():
        try:
            entry_points = list(dist.entry_points)
        except Exception as exc:  # noqa: BLE001 - whatever the parser raises for a garbled file
            logger.warning(
                "Distribution %s %s has an unreadable entry_points.txt (%s: %s); its plugins, if any, are ignored. "
                "Fix: reinstall or uninstall it.",
                _dist_name(dist, "<unnamed>"), getattr(dist, "version", None) or "?", type(exc).__name__, exc,
            )
            continue
        for ep in entry_points:
            if ep.group in found:
                found[ep.group].append(ep)
    return found


def _discover() -> dict[tuple[str, str], PluginInfo]:
    global _plugins
    with _lock:
        if _plugins is not None:
            return _plugins
        found: dict[tuple[str, str], PluginInfo] = {}
        by_module: dict[tuple[str, str], PluginInfo] = {}
        entry_points = _entry_points()
        for ep in entry_points[GROUP_PLUGINS]:
            dist = ep.dist
            dist_name = _dist_name(dist, f"<unpackaged {ep.value}>")
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist_name,
                version=(dist.version or "?") if dist is not None else "?",
            )
            found[(_norm(dist_name), ep.name)] = info
            by_module[(_norm(dist_name), ep.value)] = info
        for group, attr in ((GROUP_MODEL_TYPES, "model_types"), (GROUP_CLASSES, "classes")):
            for ep in entry_points[group]:
                dist_name = _dist_name(ep.dist, "")
                info = by_module.get((_norm(dist_name), ep.value))
                if info is None:
                    logger.warning(
                        "Entry point %r = %r of %s (group %s) names no module of its %r entry points; ignored.",
                        ep.name, ep.value, dist_name or "an unknown distribution", group, GROUP_PLUGINS,
                    )
                elif ep.name not in getattr(info, attr):
                    getattr(info, attr).append(ep.name)
        _plugins = found
        return found


def refresh() -> None:
    """Forget discovered plugins and their registrations, and scan entry points again.

    Manual ``register()`` calls and :func:`prefer` choices are kept.
    """
    global _plugins, _pm
    with _lock:
        for info in (_plugins or {}).values():
            REGISTRY.clear_source(info.distribution)
        _plugins = None
        _pm = None


def list_plugins(activate: bool = False) -> list[PluginInfo]:
    """Every installed plugin with its version, model types, frameworks, status and load error.

    With ``activate=True`` each plugin is activated first, so that frameworks and load errors are
    known; otherwise inactive plugins report what their metadata says.
    """
    plugins = list(_discover().values())
    if activate:
        for info in plugins:
            _activate(info)
    return sorted(plugins, key=lambda p: (p.distribution, p.name))


def prefer(model_type: str, distribution: str) -> None:
    """Choose which distribution serves ``model_type`` when several claim it."""
    _preferences[model_type] = _norm(distribution)


def _preference(model_type: str) -> str | None:
    if model_type in _preferences:
        return _preferences[model_type]
    for item in os.environ.get(PREFER_ENV, "").split(","):
        mt, sep, dist = item.partition("=")
        if sep and mt.strip() == model_type:
            return _norm(dist.strip())
    return None


def _claimants(model_type: str) -> list[PluginInfo]:
    return [p for p in _discover().values() if model_type in p.model_types]


def is_claimed(model_type: str) -> bool:
    return bool(_claimants(model_type))


def owner(model_type: str) -> PluginInfo | None:
    """The plugin serving ``model_type``: its only claimant, or the preferred one.

    Raises:
        ModelTypeConflictError: several distributions claim it and none was preferred.
    """
    claimants = _claimants(model_type)
    if len(claimants) <= 1:
        return claimants[0] if claimants else None
    names = " and ".join(f"{p.distribution} {p.version}" for p in claimants)
    chosen = _preference(model_type)
    if chosen is None:
        raise ModelTypeConflictError(
            f"model_type {model_type!r} is provided by {names}. Choose one: call "
            f"polyformers.plugins.prefer({model_type!r}, {claimants[0].distribution!r}), or set "
            f"{PREFER_ENV}={model_type}={claimants[0].distribution}; or uninstall one of them."
        )
    for p in claimants:
        if _norm(p.distribution) == chosen:
            return p
    raise ModelTypeConflictError(
        f"The preferred distribution {chosen!r} for model_type {model_type!r} does not provide "
        f"it; installed providers: {names}."
    )


def owner_distribution(model_type: str) -> str | None:
    info = owner(model_type)
    return info.distribution if info is not None else None


def ensure_model_type(model_type: str) -> None:
    """Activate the plugin owning ``model_type``; raise if none can serve it."""
    info = owner(model_type)
    if info is not None:
        _activate(info)
        if info.status == "failed" and not _has_manual(model_type):
            raise info.error
        return
    if not _has_manual(model_type):
        raise PluginNotInstalledError(f"No installed plugin provides model_type {model_type!r}. {install_hint(model_type)}")


def _has_manual(model_type: str) -> bool:
    tables = (REGISTRY.configs, REGISTRY.tokenizers)
    return any(MANUAL_SOURCE in t.get(model_type, {}) for t in tables) or any(
        MANUAL_SOURCE in by_source for key, by_source in REGISTRY.models.items() if key[0] == model_type
    )


def install_hint(model_type: str) -> str:
    installed = sorted({mt for p in _discover().values() for mt in p.model_types} | REGISTRY.model_types())
    if model_type in KNOWN_FAMILIES:
        dist = KNOWN_FAMILIES[model_type][0]
        return f"Install its plugin: pip install {dist}"
    return (
        f"polyformers has no plugin for it yet; installed plugins provide: "
        f"{', '.join(installed) or 'nothing'}. A third-party plugin, or AutoConfig.register / "
        f"AutoModel.register, can add it."
    )


def framework_hint(model_type: str, framework: str) -> str:
    info = owner(model_type)
    if info is None:
        return f"Install {FRAMEWORKS[framework][1]}."
    _activate(info)
    extra = info.extras.get(framework, DEFAULT_EXTRAS[framework])
    provided = ", ".join(FRAMEWORKS[f][1] for f in info.frameworks) or "none"
    return (
        f"Install it with: pip install '{info.distribution}[{extra}]'. "
        f"{info.distribution} provides {model_type!r} in: {provided}."
    )


def find_class(name: str) -> Any:
    """Import the class a plugin registered under the public name ``name`` (``BertModel``)."""
    claimants = [p for p in _discover().values() if name in p.classes]
    if len(claimants) > 1:
        # Several distributions name this class: settle who owns their shared model types from
        # metadata (a conflict raises, naming both) before importing any of them.
        for model_type in sorted(set.intersection(*(set(p.model_types) for p in claimants))):
            chosen = owner(model_type)
            claimants = [p for p in claimants if p is chosen or model_type not in p.model_types]
    for info in claimants:
        _activate(info)
    entries = [
        e for e in REGISTRY.entries_named(name) if e.source == MANUAL_SOURCE or _serves(e)
    ]
    if entries:
        return entries[0].load()
    failed = [p for p in claimants if p.status == "failed"]
    if failed:
        raise failed[0].error
    hint = _class_install_hint(name)
    raise AttributeError(f"module 'polyformers' has no attribute {name!r}.{hint}")


def _serves(entry: Entry) -> bool:
    """Whether ``entry``'s distribution owns its model type (a conflict raises, naming both)."""
    return owner_distribution(entry.model_type) == entry.source


def _class_install_hint(name: str) -> str:
    stem = re.sub(r"^(TF|Flax)", "", name)
    for model_type, (dist, prefix) in KNOWN_FAMILIES.items():
        if stem.startswith(prefix) and not is_claimed(model_type):
            return f" {name} belongs to the {model_type!r} family: pip install {dist}"
    return ""


# --- activation --------------------------------------------------------------------------------


def _plugin_manager():
    global _pm
    if _pm is None:
        import pluggy

        from . import hookspecs

        _pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        _pm.add_hookspecs(hookspecs)
    return _pm


def _fail(info: PluginInfo, what: str, exc: BaseException | None, cls: type = PluginLoadError, tb: str | None = None) -> None:
    tb = tb if tb is not None else (traceback.format_exc() if exc is not None else "")
    affected = ", ".join(repr(m) for m in info.model_types) or "none"
    message = (
        f"Plugin {info.distribution} {info.version} ({info.name}) {what}. Its model types "
        f"({affected}) are unavailable; other plugins are unaffected. Fix: reinstall or upgrade "
        f"{info.distribution}, or uninstall it."
    )
    if tb:
        message += f"\nOriginal traceback:\n{tb}"
    info.error = cls(message, distribution=info.distribution, version=info.version, cause_traceback=tb)
    info.status = "failed"


def _activate(info: PluginInfo) -> None:
    with _lock:
        if info.status != "inactive":
            return
        manual_before = _manual_registrations()
        try:
            module = importlib.import_module(info.module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a plugin must never take the process down
            _undo_foreign_registrations(info, manual_before)
            _fail(info, f"raised {type(exc).__name__}: {exc} while being imported", exc)
            return

        api = getattr(module, "POLYFORMERS_PLUGIN_API", None)
        if type(api) is not int or api not in SUPPORTED_PLUGIN_APIS:
            supported = f"{SUPPORTED_PLUGIN_APIS.start}..{SUPPORTED_PLUGIN_APIS.stop - 1}"
            _fail(
                info,
                f"speaks plugin API {api!r} (POLYFORMERS_PLUGIN_API in {info.module}), but this "
                f"polyformers-core supports API versions {supported}; install a version of "
                f"{info.distribution} built for this core, or a polyformers-core that supports it",
                None,
                PluginAPIVersionError,
            )
            return

        pm = _plugin_manager()
        try:
            pm.register(module, name=_pm_name(info))
            _check_hook_names(module, info)
            results = {
                hook: _call_hook(pm, info, hook)
                for hook in (
                    "polyformers_configs",
                    "polyformers_models",
                    "polyformers_tokenizers",
                    "polyformers_processors",
                    "polyformers_pipeline_tasks",
                    "polyformers_framework_extras",
                )
            }
            _add_registrations(info, results)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if pm.is_registered(module):
                pm.unregister(module)
            _undo_foreign_registrations(info, manual_before)
            _fail(info, f"failed during activation: {type(exc).__name__}: {str(exc).rstrip('.')}", exc)
            return
        foreign = _undo_foreign_registrations(info, manual_before)
        if foreign:
            pm.unregister(module)
            REGISTRY.clear_source(info.distribution)
            _fail(
                info,
                f"called register() for model type(s) {', '.join(map(repr, foreign))}, which it does not declare in its "
                f"{GROUP_MODEL_TYPES!r} entry points; those registrations were undone (another plugin's model type is "
                f"never replaced this way)",
                None,
            )
            return
        info.status = "active"


def _registration_tables() -> tuple[dict, ...]:
    return (REGISTRY.configs, REGISTRY.models, REGISTRY.tokenizers, REGISTRY.processors)


def _manual_registrations() -> dict[tuple[int, Any], Any]:
    """Every ``register()`` entry now in the registry, by (table index, key)."""
    return {
        (index, key): by_source[MANUAL_SOURCE]
        for index, table in enumerate(_registration_tables())
        for key, by_source in table.items()
        if MANUAL_SOURCE in by_source
    }


def _undo_foreign_registrations(info: PluginInfo, before: dict[tuple[int, Any], Any]) -> list[str]:
    """Undo the ``register()`` calls made since ``before`` for model types ``info`` does not declare; return those types."""
    tables = _registration_tables()
    foreign: set[str] = set()
    for (index, key), entry in _manual_registrations().items():
        if before.get((index, key)) is entry:
            continue
        model_type = key[0] if isinstance(key, tuple) else key
        if model_type in info.model_types:
            continue
        foreign.add(str(model_type))
        if (index, key) in before:
            tables[index][key][MANUAL_SOURCE] = before[(index, key)]
        else:
            del tables[index][key][MANUAL_SOURCE]
    return sorted(foreign)


def _call_hook(pm, info: PluginInfo, hook: str) -> Any:
    impls = [impl for impl in getattr(pm.hook, hook).get_hookimpls() if impl.plugin_name == _pm_name(info)]
    if not impls:
        return None
    try:
        return impls[0].function()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise RegistrationError(f"hook {hook} of {info.distribution} raised {type(exc).__name__}: {exc}") from exc


def _pm_name(info: PluginInfo) -> str:
    return f"{info.distribution}:{info.name}"


def _check_hook_names(module: Any, info: PluginInfo) -> None:
    """A misspelled hook would silently register nothing: refuse it."""
    from . import hookspecs

    known = {name for name in dir(hookspecs) if name.startswith("polyformers_")}
    for name in dir(module):
        if name.startswith("polyformers_") and callable(getattr(module, name)) and name not in known:
            raise RegistrationError(
                f"{info.module} defines {name!r}, which is not a polyformers hook; known hooks: "
                f"{', '.join(sorted(known))}. Fix the name (see polyformers.hookspecs)."
            )


def _add_registrations(info: PluginInfo, results: dict[str, Any]) -> None:
    """Validate every hook result first, then add them all: a bad plugin adds nothing."""
    source, declared = info.distribution, set(info.model_types)
    pending: list[tuple[dict, Any, Any]] = []

    def model_type_of(hook: str, model_type: Any) -> str:
        if model_type not in declared:
            raise RegistrationError(
                f"hook {hook} registers model_type {model_type!r}, which {source} does not "
                f"declare in its {GROUP_MODEL_TYPES!r} entry points (declared: "
                f"{', '.join(sorted(declared)) or 'none'}); add it to the plugin's metadata."
            )
        return model_type

    def make(hook: str, model_type: str, path: Any, framework: str | None = None) -> Entry:
        check_dotted_path(path, f"hook {hook} of {source}, model_type {model_type!r}")
        return Entry(model_type, source, path=path, framework=framework, source_version=info.version)

    def unpack(hook: str, spec: Any, fields: int) -> tuple:
        if not isinstance(spec, tuple) or len(spec) != fields:
            raise RegistrationError(f"hook {hook} of {source} returned {spec!r}; expected a {fields}-field spec from polyformers.hookspecs.")
        return spec

    def sequence(hook: str) -> Any:
        value = results[hook]
        if value is None:
            return ()
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or hasattr(value, "keys"):
            raise RegistrationError(f"hook {hook} of {source} returned {value!r}; expected a list of specs.")
        return value

    configs = results["polyformers_configs"] or {}
    if not hasattr(configs, "items"):
        raise RegistrationError(f"hook polyformers_configs of {source} returned {configs!r}; expected a mapping {{model_type: 'module:ConfigClass'}}.")
    for model_type, path in dict(configs).items():
        mt = model_type_of("polyformers_configs", model_type)
        pending.append((REGISTRY.configs, mt, make("polyformers_configs", mt, path)))

    frameworks: set[str] = set()
    for spec in sequence("polyformers_models"):
        model_type, task, framework, path = unpack("polyformers_models", spec, 4)
        mt = model_type_of("polyformers_models", model_type)
        if task not in TASKS:
            raise RegistrationError(f"hook polyformers_models: unknown task {task!r} for {path!r}; known tasks: {', '.join(TASKS)}.")
        if framework not in FRAMEWORKS:
            raise RegistrationError(f"hook polyformers_models: unknown framework {framework!r} for {path!r}; expected one of {', '.join(FRAMEWORKS)}.")
        frameworks.add(framework)
        pending.append((REGISTRY.models, (mt, task, framework), make("polyformers_models", mt, path, framework)))

    for spec in sequence("polyformers_tokenizers"):
        model_type, slow, fast = unpack("polyformers_tokenizers", spec, 3)
        mt = model_type_of("polyformers_tokenizers", model_type)
        pair = tuple(make("polyformers_tokenizers", mt, p) if p is not None else None for p in (slow, fast))
        pending.append((REGISTRY.tokenizers, mt, pair))

    for spec in sequence("polyformers_processors"):
        model_type, kind, path = unpack("polyformers_processors", spec, 3)
        mt = model_type_of("polyformers_processors", model_type)
        if kind not in PROCESSOR_KINDS:
            raise RegistrationError(f"hook polyformers_processors: unknown kind {kind!r}; expected one of {', '.join(PROCESSOR_KINDS)}.")
        pending.append((REGISTRY.processors, (mt, kind), make("polyformers_processors", mt, path)))

    for spec in sequence("polyformers_pipeline_tasks"):
        if not hasattr(spec, "pipeline"):
            raise RegistrationError(f"hook polyformers_pipeline_tasks of {source} returned {spec!r}; expected PipelineTaskSpec entries.")
        check_dotted_path(spec.pipeline, f"hook polyformers_pipeline_tasks of {source}, task {spec.task!r}")
        pending.append((REGISTRY.pipeline_tasks, spec.task, spec))

    extras = results["polyformers_framework_extras"] or {}
    if not hasattr(extras, "items"):
        raise RegistrationError(f"hook polyformers_framework_extras of {source} returned {extras!r}; expected a mapping like {{'pt': 'torch'}}.")
    extras = dict(extras)
    for table, key, value in pending:
        table.setdefault(key, {})[source] = value
    info.frameworks = [f for f in FRAMEWORKS if f in frameworks]
    info.extras = extras
