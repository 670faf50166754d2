"""Shared fixtures of the core test suite.

The plugin loader keeps process-wide state (discovered plugins, ``prefer()`` choices, the pluggy
manager, the registry, names cached on the ``polyformers`` module). Every test gets that state
back as it found it, so tests may install fake plugins, register classes and prefer
distributions in any order. The suite needs only polyformers-core: tests build fake plugins with
:mod:`polyformers.testing.plugin_kit` instead of assuming polyformers-bert is installed.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest

import polyformers
from polyformers import plugins, registry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: needs real weights or takes seconds; run with -m slow")


_REGISTRY_TABLES = ("configs", "models", "tokenizers", "processors", "pipeline_tasks")


def _snapshot_plugins(found: dict[str, plugins.PluginInfo] | None) -> dict[str, plugins.PluginInfo] | None:
    if found is None:
        return None
    return {
        key: dataclasses.replace(
            info,
            model_types=list(info.model_types),
            classes=list(info.classes),
            frameworks=list(info.frameworks),
            extras=dict(info.extras),
        )
        for key, info in found.items()
    }


@pytest.fixture(autouse=True)
def _restore_polyformers_state(monkeypatch: pytest.MonkeyPatch):
    """Give back the loader's and registry's state, ``sys.path`` and ``polyformers``' cache."""
    monkeypatch.delenv(plugins.PREFER_ENV, raising=False)
    saved_plugins = _snapshot_plugins(plugins._plugins)
    saved_preferences = dict(plugins._preferences)
    saved_tables = {
        name: {key: dict(by_source) for key, by_source in getattr(registry.REGISTRY, name).items()}
        for name in _REGISTRY_TABLES
    }
    saved_names = set(vars(polyformers))
    saved_path = list(sys.path)
    yield
    with plugins._lock:
        plugins._plugins = _snapshot_plugins(saved_plugins)
        plugins._preferences.clear()
        plugins._preferences.update(saved_preferences)
        # The pluggy manager only carries hook calls of activations; a fresh one is consistent
        # with any restored state (active plugins are not asked again, inactive ones register).
        plugins._pm = None
        for name, saved in saved_tables.items():
            table = getattr(registry.REGISTRY, name)
            table.clear()
            table.update({key: dict(by_source) for key, by_source in saved.items()})
    for name in set(vars(polyformers)) - saved_names:
        if not isinstance(vars(polyformers)[name], types.ModuleType):  # keep imported submodules
            delattr(polyformers, name)
    sys.path[:] = saved_path


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """An empty directory standing for ``site-packages``, to write fake distributions into."""
    path = tmp_path / "site-packages"
    path.mkdir()
    return path
