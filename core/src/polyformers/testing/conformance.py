"""Registry-driven checks that a plugin's metadata and hooks agree: run them on every plugin.

``check_plugin("polyformers-bert")`` activates the plugin, then verifies that the class names and
model types in its entry-point metadata are exactly those its hooks register, that every
registered class imports (frameworks that are not installed are skipped) and is the class its
public name promises, and that model classes point back to the registered config class.
"""

from __future__ import annotations

import importlib.util

from .. import plugins
from ..registry import FRAMEWORKS, REGISTRY, framework_available


def registered_entries(distribution: str) -> list:
    """Every registry entry (config, model, tokenizer, processor) a distribution contributed."""
    entries = []
    for table in (REGISTRY.configs, REGISTRY.models, REGISTRY.processors):
        entries += [e for by_source in table.values() for source, e in by_source.items() if source == distribution]
    for by_source in REGISTRY.tokenizers.values():
        for source, pair in by_source.items():
            if source == distribution:
                entries += [e for e in pair if e is not None]
    return entries


def check_plugin(distribution: str) -> list[str]:
    """Return a list of problems (empty when the plugin conforms)."""
    infos = [p for p in plugins.list_plugins(activate=True) if plugins._norm(p.distribution) == plugins._norm(distribution)]
    if not infos:
        return [f"{distribution} is not installed as a polyformers plugin"]
    info = infos[0]
    if info.status != "active":
        return [f"{distribution} failed to activate: {info.error}"]
    problems = []
    entries = registered_entries(info.distribution)
    registered_names = {e.class_name for e in entries}
    declared_names = set(info.classes)
    if registered_names - declared_names:
        problems.append(f"classes registered but missing from the 'polyformers.classes' entry points: {sorted(registered_names - declared_names)}")
    if declared_names - registered_names:
        problems.append(f"classes in the 'polyformers.classes' entry points that no hook registers: {sorted(declared_names - registered_names)}")
    registered_types = {e.model_type for e in entries}
    if registered_types != set(info.model_types):
        problems.append(f"model types declared {sorted(info.model_types)} but registered {sorted(registered_types)}")

    for entry in entries:
        if entry.framework is not None and not framework_available(entry.framework):
            continue
        module_name = entry.path.split(":")[0]
        if importlib.util.find_spec(module_name) is None:
            problems.append(f"{entry.path}: module {module_name} not found")
            continue
        cls = entry.load()
        if cls.__name__ != entry.class_name:
            problems.append(f"{entry.path} is named {cls.__name__}")
        if entry.framework is not None:
            config_entry = REGISTRY.configs.get(entry.model_type, {}).get(info.distribution)
            config_class = config_entry.load() if config_entry else None
            if getattr(cls, "config_class", None) is not config_class:
                problems.append(f"{entry.class_name}.config_class is {getattr(cls, 'config_class', None)}, expected {config_class}")
            prefix = FRAMEWORKS[entry.framework][2]
            if prefix and not cls.__name__.startswith(prefix):
                problems.append(f"{cls.__name__} is a {entry.framework} class and must start with {prefix!r}")
    return problems
