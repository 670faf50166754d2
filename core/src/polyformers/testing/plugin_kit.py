"""Fake installed plugins for testing the plugin loader, in the spirit of pytest's ``pytester``.

A plugin is found through its distribution's metadata, so a realistic test installs one. This kit
writes a distribution the way pip would leave it (``<name>-<version>.dist-info`` with ``METADATA``
and ``entry_points.txt``, beside the package sources) into a temporary directory, and
:func:`installed` puts that directory on ``sys.path`` so that the standard
:mod:`importlib.metadata` discovery, and therefore :mod:`polyformers.plugins`, finds it::

    from polyformers.testing.plugin_kit import installed, make_distribution, plugin_module_source

    make_distribution(
        tmp_path,
        "polyformers-toy",
        "1.2.0",
        modules={
            "toy._plugin": plugin_module_source(configs={"toy": "toy.configuration:ToyConfig"}),
            "toy.configuration": TOY_CONFIG_SOURCE,
        },
        plugins={"toy": "toy._plugin"},
        model_types=["toy"],
        classes=["ToyConfig"],
    )
    with installed(tmp_path, isolated=True):
        config = AutoConfig.for_model("toy")

Nothing here imports a framework, or any plugin.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "ENTRY_POINT_GROUPS",
    "dist_info_name",
    "installed",
    "make_distribution",
    "plugin_module_source",
    "purge_modules",
]

ENTRY_POINT_GROUPS = ("polyformers.plugins", "polyformers.model_types", "polyformers.classes")
"""The entry-point groups polyformers reads; :func:`installed` with ``isolated=True`` filters them."""

EntryPointsArg = Mapping[str, str] | Iterable[str] | None


def dist_info_name(name: str, version: str) -> str:
    """The ``.dist-info`` directory name installers use: ``polyformers_toy-1.2.0.dist-info``."""
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}.dist-info"


def _module_file(module: str) -> Path:
    """``"toy._plugin"`` -> ``toy/_plugin.py``; a key ending in ``.py`` is already a path."""
    if module.endswith(".py"):
        return Path(module)
    return Path(*module.split(".")).with_suffix(".py")


def _as_mapping(entries: EntryPointsArg, plugins: Mapping[str, str], group: str) -> dict[str, str]:
    """Entry points as ``{name: module}``; a plain list of names points at the only hook module."""
    if entries is None:
        return {}
    if isinstance(entries, Mapping):
        return dict(entries)
    modules = set(plugins.values())
    if len(modules) != 1:
        raise ValueError(
            f"{group}: a list of names needs exactly one plugin module to point at, but plugins "
            f"names {len(modules)} ({sorted(modules)}); pass a {{name: module}} dict instead."
        )
    (module,) = modules
    return {name: module for name in entries}


def make_distribution(
    root: str | os.PathLike,
    name: str,
    version: str = "0.1.0",
    *,
    modules: Mapping[str, str] | None = None,
    plugins: Mapping[str, str] | None = None,
    model_types: EntryPointsArg = None,
    classes: EntryPointsArg = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write an installed distribution into ``root``; return its ``.dist-info`` directory.

    :param root: the directory standing for ``site-packages`` (e.g. pytest's ``tmp_path``).
    :param name: the distribution name (``"polyformers-toy"``), as users ``pip install`` it.
    :param version: its version, written to ``METADATA``.
    :param modules: source files: ``{"toy._plugin": source}`` (dotted module name, parent
        packages get an empty ``__init__.py`` unless given) or ``{"toy/data.py": source}``.
        Sources are dedented, so triple-quoted blocks may be indented.
    :param plugins: the ``polyformers.plugins`` group, ``{plugin_name: hook_module}``.
    :param model_types: the ``polyformers.model_types`` group, ``{model_type: hook_module}``, or
        a list of model types, all pointing at the only module of ``plugins``.
    :param classes: the ``polyformers.classes`` group, like ``model_types``.
    :param extra_metadata: further ``METADATA`` headers (``{"Requires-Dist": "..."}``).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    plugins = dict(plugins or {})
    groups = {
        "polyformers.plugins": plugins,
        "polyformers.model_types": _as_mapping(model_types, plugins, "model_types"),
        "polyformers.classes": _as_mapping(classes, plugins, "classes"),
    }

    top_level: set[str] = set()
    for module, source in (modules or {}).items():
        path = root / _module_file(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        top_level.add(_module_file(module).parts[0].removesuffix(".py"))
        for package in path.relative_to(root).parents:
            init = root / package / "__init__.py"
            if package != Path(".") and not init.exists():
                init.write_text("", encoding="utf-8")

    dist_info = root / dist_info_name(name, version)
    dist_info.mkdir(parents=True, exist_ok=True)
    headers = {"Metadata-Version": "2.1", "Name": name, "Version": version, **(extra_metadata or {})}
    (dist_info / "METADATA").write_text(
        "".join(f"{key}: {value}\n" for key, value in headers.items()), encoding="utf-8"
    )
    sections = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items())
        for group, entries in groups.items()
        if entries
    ]
    (dist_info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
    (dist_info / "top_level.txt").write_text("".join(f"{t}\n" for t in sorted(top_level)), encoding="utf-8")
    (dist_info / "INSTALLER").write_text("polyformers.testing.plugin_kit\n", encoding="utf-8")
    return dist_info


def plugin_module_source(
    *,
    api_version: Any = 1,
    configs: Mapping[str, str] | None = None,
    models: Sequence[tuple[str, str, str, str]] | Any = None,
    tokenizers: Sequence[tuple[str, str | None, str | None]] | Any = None,
    processors: Sequence[tuple[str, str, str]] | Any = None,
    framework_extras: Mapping[str, str] | None = None,
    prelude: str = "",
) -> str:
    """The source of a hook module implementing the hooks whose results are given.

    Results are written with ``repr`` as given, so they may be deliberately malformed (to test
    validation); ``models`` entries are ``(model_type, task, framework, "module:Class")`` tuples
    or :class:`~polyformers.hookspecs.ModelSpec` (likewise ``TokenizerSpec``, ``ProcessorSpec``).
    ``api_version=None`` leaves ``POLYFORMERS_PLUGIN_API`` out. ``prelude`` is code run at import
    (``"raise RuntimeError('boom')"`` makes a plugin that fails to import).
    """
    lines = [
        "from polyformers.hookspecs import hookimpl, ModelSpec, TokenizerSpec, ProcessorSpec",
        textwrap.dedent(prelude),
    ]
    if api_version is not None:
        lines.append(f"POLYFORMERS_PLUGIN_API = {api_version!r}")
    hooks = {
        "polyformers_configs": configs,
        "polyformers_models": models,
        "polyformers_tokenizers": tokenizers,
        "polyformers_processors": processors,
        "polyformers_framework_extras": framework_extras,
    }
    for hook, result in hooks.items():
        if result is not None:
            lines += ["", "@hookimpl", f"def {hook}():", f"    return {result!r}"]
    return "\n".join(lines) + "\n"


def _is_under(path: str | None, roots: Sequence[Path]) -> bool:
    # A string test: it runs for every module in sys.modules, and what was imported from a root
    # on sys.path has that root (already resolved by installed()) as its prefix.
    if not path:
        return False
    path = os.path.normpath(path)
    return any(path == str(r) or path.startswith(str(r) + os.sep) for r in roots)


def _locations(module: Any) -> list[str]:
    """Where ``module`` was loaded from; tolerant of the odd objects some libraries put in
    ``sys.modules`` (lazy modules, namespaces whose ``__path__`` is not a list)."""
    try:
        locations = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or ())]
    except Exception:
        return []
    return [location for location in locations if isinstance(location, str)]


def purge_modules(*roots: str | os.PathLike) -> list[str]:
    """Remove from ``sys.modules`` every module loaded from under ``roots``; return their names."""
    resolved = [Path(r).resolve() for r in roots]
    purged = []
    for name, module in list(sys.modules.items()):
        if any(_is_under(location, resolved) for location in _locations(module)):
            del sys.modules[name]
            purged.append(name)
    return purged


@contextlib.contextmanager
def _only_entry_points_under(roots: Sequence[Path]) -> Iterator[None]:
    """Hide the polyformers entry points of distributions outside ``roots``."""
    original = importlib.metadata.entry_points

    def keep(ep: Any) -> bool:
        if getattr(ep, "group", None) not in ENTRY_POINT_GROUPS:
            return True
        dist = getattr(ep, "dist", None)
        return dist is not None and _is_under(str(dist.locate_file("")), roots)

    def entry_points(**params: Any) -> Any:
        found = original(**params)
        if isinstance(found, importlib.metadata.EntryPoints):
            return importlib.metadata.EntryPoints(ep for ep in found if keep(ep))
        return found  # the deprecated dict-like result of a call without arguments

    importlib.metadata.entry_points = entry_points
    try:
        yield
    finally:
        importlib.metadata.entry_points = original


@contextlib.contextmanager
def installed(*roots: str | os.PathLike, isolated: bool = False) -> Iterator[list[Path]]:
    """Make the distributions written into ``roots`` installed, for the duration of a ``with``.

    On entry the roots go to the front of ``sys.path`` (the first root first) and
    :func:`polyformers.plugins.refresh` forgets earlier discoveries. On exit the roots leave
    ``sys.path``, every module imported from them leaves ``sys.modules``, and plugins are
    refreshed again, so the next test starts clean.

    :param isolated: also hide the polyformers entry points of every distribution outside
        ``roots`` (``polyformers-bert`` included), as in an environment where only core and these
        fakes are installed. Other entry-point groups are untouched.
    """
    from polyformers import plugins  # imports no framework and no plugin

    paths = [Path(r).resolve() for r in roots]
    added = [str(p) for p in paths if str(p) not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()
    try:
        with contextlib.ExitStack() as stack:
            if isolated:
                stack.enter_context(_only_entry_points_under(paths))
            plugins.refresh()
            yield paths
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
        purge_modules(*paths)
        importlib.invalidate_caches()
        plugins.refresh()
