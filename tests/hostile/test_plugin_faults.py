"""Hostile plugins installed next to the real ones: polyformers-bert, -wav2vec2 and -detr keep working.

Fixture distributions (written by :mod:`polyformers.testing.plugin_kit`, as pip would leave them)
raise ``ImportError`` or ``SystemExit`` at import, have a syntax error, a malformed entry point
(a value that is no module name, a ``module:attr`` value, an ``entry_points.txt`` that does not
parse, METADATA without a name), hang at import, claim ``bert`` a second time, or take over
``bert`` by calling ``register()`` while being activated. Every test runs with the real plugins
installed (``installed(..., isolated=False)``), so "unrelated model types keep working" is checked
on the real ones.

Failures are reported once: a broken plugin is imported once, its error recorded (distribution,
version, cause) and raised again, the same object, on every later use; discovery warnings appear
once per discovery.

Covered elsewhere, not repeated here: ImportError/RuntimeError/SystemExit in a hook module or a
class module on fake plugins in an isolated environment, plugin-API mismatches, malformed hook
results, conflict resolution by ``prefer``/``POLYFORMERS_PREFER``, and ``register()`` refusing a
type a plugin provides (``core/tests/test_plugins.py``).

A plugin that hangs at import: discovery imports nothing, so ``import polyformers``,
``list_plugins()`` and the other model types never wait for it (checked in a child process with a
deadline). Using its own model type does hang, as any Python import that hangs; there is no import
timeout, because a half-run import cannot be abandoned safely.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from polyformers import AutoConfig, AutoModel, plugins
from polyformers.errors import ModelTypeConflictError, PluginLoadError
from polyformers.testing.plugin_kit import installed, make_distribution, plugin_module_source

TINY_BERT = dict(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=16)
FAKE_CONFIG = """
    from polyformers import PretrainedConfig

    class {stem}Config(PretrainedConfig):
        model_type = "{model_type}"
"""


def add(site, dist: str, model_type: str, version: str = "1.0.0", *, prelude: str = "", hook_source: str | None = None, **entry_points):
    """A fake plugin ``dist`` providing ``model_type``, whose hook module runs ``prelude`` at import."""
    pkg = dist.replace("-", "_")
    stem = model_type.title().replace("_", "")
    modules = {
        f"{pkg}.configuration": FAKE_CONFIG.format(stem=stem, model_type=model_type),
        f"{pkg}._plugin": hook_source if hook_source is not None else plugin_module_source(
            prelude=prelude, configs={model_type: f"{pkg}.configuration:{stem}Config"}
        ),
    }
    make_distribution(
        site, dist, version, modules=modules,
        plugins=entry_points.get("plugins", {model_type: f"{pkg}._plugin"}),
        model_types=entry_points.get("model_types", [model_type]),
        classes=entry_points.get("classes", [f"{stem}Config"]),
    )
    return pkg


def real_plugins_work() -> None:
    """The real plugins serve their types: configs, a BERT forward pass, Wav2Vec2 and DETR configs."""
    import torch

    config = AutoConfig.for_model("bert", **TINY_BERT)
    model = AutoModel.from_config(config)
    assert type(model).__name__ == "BertModel" and type(model).__module__.startswith("polyformers_bert")
    assert model(torch.tensor([[1, 2, 3]])).last_hidden_state.shape == (1, 3, 8)
    assert type(AutoConfig.for_model("wav2vec2")).__module__.startswith("polyformers_wav2vec2")
    assert type(AutoConfig.for_model("detr")).__module__.startswith("polyformers_detr")


# (distribution, model type, prelude or hook source, the cause the error must name)
IMPORT_FAULTS = [
    ("hostile-importerror", "h_importerror", "raise ImportError('needs helper_lib_xyz')", "ImportError: needs helper_lib_xyz"),
    ("hostile-systemexit", "h_systemexit", "raise SystemExit('bye_xyz')", "SystemExit: bye_xyz"),
    ("hostile-syntaxerror", "h_syntaxerror", "def broken(:\n    pass", "SyntaxError"),
    ("hostile-keyerror", "h_keyerror", "{}['missing_xyz']", "KeyError: 'missing_xyz'"),
    ("hostile-recursion", "h_recursion", "def f(): return f()\nf()", "RecursionError"),
]


@pytest.fixture
def site(tmp_path):
    return tmp_path / "site-packages"


@pytest.mark.parametrize("dist, model_type, prelude, cause", IMPORT_FAULTS, ids=[f[0] for f in IMPORT_FAULTS])
def test_a_plugin_failing_at_import_is_reported_once_and_breaks_nothing_else(site, tmp_path, dist, model_type, prelude, cause):
    counter = tmp_path / "imports.txt"
    pkg = add(site, dist, model_type, "6.6.6", prelude=f"open({str(counter)!r}, 'a').write('x')\n{prelude}")
    with installed(site):
        assert pkg not in " ".join(sys.modules)  # discovery imported nothing
        errors = []
        for _ in range(3):
            with pytest.raises(PluginLoadError) as info:
                AutoConfig.for_model(model_type)
            errors.append(info.value)
        assert errors[0] is errors[1] is errors[2]  # recorded once, raised again
        imports = counter.read_text() if counter.exists() else ""
        assert imports == ("" if cause == "SyntaxError" else "x")  # imported once (a syntax error stops before any line runs)
        message = str(errors[0])
        assert f"{dist} 6.6.6" in message and cause in message, message
        assert (errors[0].distribution, errors[0].version) == (dist, "6.6.6")
        assert isinstance(errors[0], ImportError)
        [info] = [p for p in plugins.list_plugins() if p.distribution == dist]
        assert info.status == "failed" and info.error is errors[0]
        real_plugins_work()


def test_malformed_entry_points_are_reported_and_ignored(site, caplog):
    # A value that is no module name, and a ``module:attr`` value (the hook module is a module).
    make_distribution(site, "hostile-badname", "0.1.0", plugins={"badname": "not a module!!"}, model_types={"h_badname": "not a module!!"})
    add(site, "hostile-attr", "h_attr", "0.2.0", plugins={"h_attr": "hostile_attr._plugin:hooks"}, model_types={"h_attr": "hostile_attr._plugin:hooks"}, classes={})
    # A model type pointing at a module that no plugins entry point names.
    add(site, "hostile-orphan", "h_orphan", "0.3.0", model_types={"h_orphan": "hostile_orphan.elsewhere"}, classes={})
    # An entry_points.txt that does not parse: importlib.metadata.entry_points() raises for every distribution.
    garbled = make_distribution(site, "hostile-garbled", "0.4.0")
    (garbled / "entry_points.txt").write_text("[polyformers.plugins]\nno equals sign here\n[polyformers.model_types\n= x\n")
    # METADATA without a name or a version.
    nameless = make_distribution(site, "hostile-nameless", "0.5.0", modules={"hostile_nameless._plugin": plugin_module_source()}, plugins={"nameless": "hostile_nameless._plugin"}, model_types=["h_nameless"])
    (nameless / "METADATA").write_text("Metadata-Version: 2.1\n")

    with caplog.at_level(logging.WARNING, logger="polyformers.plugins"), installed(site):
        listed = {p.distribution: p for p in plugins.list_plugins()}
        plugins.list_plugins()  # a second listing does not report again
        real_plugins_work()
        for model_type, expected in (("h_badname", "hostile-badname 0.1.0"), ("h_attr", "hostile-attr 0.2.0")):
            with pytest.raises(PluginLoadError, match=expected):
                AutoConfig.for_model(model_type)
        with pytest.raises(ImportError, match="h_orphan"):  # PluginNotInstalledError: nothing serves it
            AutoConfig.for_model("h_orphan")

    assert {"polyformers-bert", "polyformers-wav2vec2", "polyformers-detr"} <= set(listed)
    assert "hostile-garbled" not in listed
    assert any(name.startswith("<unnamed distribution") and "hostile_nameless" in name for name in listed)
    warnings = [r.getMessage() for r in caplog.records]
    garbled_reports = [w for w in warnings if "hostile-garbled 0.4.0" in w]
    assert len(garbled_reports) == 1 and "entry_points.txt" in garbled_reports[0] and "TypeError" in garbled_reports[0], warnings
    orphan_reports = [w for w in warnings if "hostile-orphan" in w]
    assert len(orphan_reports) == 1 and "h_orphan" in orphan_reports[0], warnings


def test_a_second_claim_on_bert_is_a_conflict_never_a_silent_replacement(site, tmp_path, monkeypatch):
    counter = tmp_path / "imports.txt"
    add(site, "hostile-bert", "bert", "9.9.9", prelude=f"open({str(counter)!r}, 'a').write('x')", classes=["BertModel", "BertConfig"])
    monkeypatch.delenv(plugins.PREFER_ENV, raising=False)
    with installed(site):
        with pytest.raises(ModelTypeConflictError) as info:
            AutoConfig.for_model("bert")
        assert "polyformers-bert" in str(info.value) and "hostile-bert 9.9.9" in str(info.value)
        assert not counter.exists()  # the conflict is found from metadata: the impostor was not imported
        with pytest.raises(ModelTypeConflictError):
            import polyformers

            polyformers.BertModel  # noqa: B018 - the lazy attribute resolves through the same owner
        assert not counter.exists()  # ... also before importing any claimant of the class name
        # Unrelated types are untouched by the conflict.
        assert type(AutoConfig.for_model("wav2vec2")).__module__.startswith("polyformers_wav2vec2")
        plugins.prefer("bert", "polyformers-bert")
        try:
            real_plugins_work()
        finally:
            plugins._preferences.pop("bert", None)


HIJACKER = """
    from polyformers import AutoConfig, AutoModel, PretrainedConfig
    from polyformers.hookspecs import hookimpl
    from polyformers_bert.configuration_bert import BertConfig

    POLYFORMERS_PLUGIN_API = 1

    class EvilBertModel:
        config_class = BertConfig

        @classmethod
        def _from_config(cls, config, **kwargs):
            return cls()

    class EvilBertConfig(PretrainedConfig):
        model_type = "bert"

    # Take over another plugin's type while being imported.
    AutoConfig.register("bert", EvilBertConfig, exist_ok=True)
    AutoModel.register(BertConfig, EvilBertModel, exist_ok=True)

    class HijackConfig(PretrainedConfig):
        model_type = "h_hijack"

    @hookimpl
    def polyformers_configs():
        return {"h_hijack": "hostile_hijack._plugin:HijackConfig"}
"""


def test_a_plugin_registering_another_plugins_type_is_undone_and_failed(site):
    add(site, "hostile-hijack", "h_hijack", "1.3.0", hook_source=textwrap.dedent(HIJACKER), classes=["HijackConfig"])
    with installed(site):
        real_plugins_work()  # bert is active before the hijacker runs
        with pytest.raises(PluginLoadError) as info:
            AutoConfig.for_model("h_hijack")
        message = str(info.value)
        assert "hostile-hijack 1.3.0" in message and "'bert'" in message and "undone" in message
        real_plugins_work()  # still the real BertConfig and BertModel


def test_a_plugin_registering_an_undeclared_type_through_its_hooks_is_refused(site):
    pkg = "hostile_squatter"
    add(site, "hostile-squatter", "h_squat", "2.0.0", hook_source=plugin_module_source(configs={"bert": f"{pkg}.configuration:HSquatConfig"}))
    with installed(site):
        with pytest.raises(PluginLoadError, match="hostile-squatter 2.0.0.*'bert'.*does not declare"):
            AutoConfig.for_model("h_squat")
        real_plugins_work()


HANG_CHILD = textwrap.dedent(
    """
    import json, sys, time
    start = time.monotonic()
    import polyformers
    from polyformers import AutoConfig, AutoModel, plugins
    listed = {p.distribution: p.status for p in plugins.list_plugins()}
    import torch
    config = AutoConfig.for_model("bert", vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    model = AutoModel.from_config(config)
    out = model(torch.tensor([[1, 2]])).last_hidden_state.shape
    AutoConfig.for_model("wav2vec2")
    polyformers.BertModel
    print(json.dumps({"listed": listed, "shape": list(out), "seconds": time.monotonic() - start,
                      "hang_imported": any(m.startswith("hostile_hang") for m in sys.modules)}))
    sys.stdout.flush()
    if sys.argv[1] == "use":
        AutoConfig.for_model("h_hang")  # this one waits for the hanging import
    """
)


@pytest.mark.slow
def test_a_plugin_hanging_at_import_never_holds_up_discovery_or_other_types(site):
    add(site, "hostile-hang", "h_hang", "0.0.1", prelude="import time\ntime.sleep(3600)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", HANG_CHILD, "list"], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["listed"]["hostile-hang"] == "inactive" and "polyformers-bert" in report["listed"]
    assert report["shape"] == [1, 2, 8] and not report["hang_imported"]

    # Using the hanging type itself does wait (documented): the child is still busy after its report.
    child = subprocess.Popen([sys.executable, "-c", HANG_CHILD, "use"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert json.loads(line)["shape"] == [1, 2, 8]
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=2)
    finally:
        child.kill()
        child.wait()
