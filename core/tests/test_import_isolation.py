"""``import polyformers`` stays cheap: no framework, no Transformers, no plugin.

Each check runs in a fresh interpreter, since this one has imported who knows what already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

FORBIDDEN = ("torch", "tensorflow", "jax", "flax", "transformers")

PROBE = """
import json, sys, time
start = time.perf_counter()
{code}
elapsed = time.perf_counter() - start
print(json.dumps({{"elapsed": elapsed, "modules": sorted(sys.modules)}}))
"""


def run_probe(code: str) -> tuple[float, list[str]]:
    script = PROBE.format(code=textwrap.dedent(code).strip())
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result["elapsed"], result["modules"]


def heavy_modules(modules: list[str]) -> list[str]:
    """Frameworks, Transformers and plugin packages among ``modules``."""
    return [
        m
        for m in modules
        if m.split(".")[0] in FORBIDDEN or m.startswith("polyformers_")
    ]


@pytest.mark.parametrize(
    "what, code",
    [
        ("import polyformers", "import polyformers"),
        ("list_plugins()", "import polyformers, polyformers.plugins\npolyformers.plugins.list_plugins()"),
        ("the plugin kit", "import polyformers.testing.plugin_kit"),
        ("the Auto API", "import polyformers\npolyformers.AutoConfig, polyformers.AutoModel, polyformers.PretrainedConfig"),
    ],
    ids=["import", "list_plugins", "plugin_kit", "auto_api"],
)
def test_import_imports_no_framework_and_no_plugin(what, code):
    elapsed, modules = run_probe(code)
    print(f"{what}: {elapsed * 1000:.0f} ms, {len(modules)} modules")
    assert heavy_modules(modules) == [], f"{what} imported {heavy_modules(modules)}"
    assert elapsed < 0.5, f"{what} took {elapsed:.2f} s"
