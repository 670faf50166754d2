"""Cross-package checks with the real BERT plugin installed: lazy loading, isolation, conformance."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


HEAVY = ("torch", "tensorflow", "jax", "flax", "transformers")
LOADED = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch','tensorflow','jax','flax','transformers','polyformers_bert'})))"


def test_import_polyformers_imports_no_framework_and_no_plugin():
    assert run_python(f"import polyformers; {LOADED}") == []


def test_listing_plugins_reads_metadata_only():
    code = f"import polyformers.plugins as p; names = [i.distribution for i in p.list_plugins()]; assert 'polyformers-bert' in names, names; {LOADED}"
    assert run_python(code) == []


def test_config_and_tokenizer_need_no_framework(tmp_path):
    from polyformers_bert.configuration_bert import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(tmp_path)
    code = f"from polyformers import AutoConfig, BertConfig; c = AutoConfig.from_pretrained({str(tmp_path)!r}); assert type(c) is BertConfig; {LOADED}"
    assert run_python(code) == ["polyformers_bert"]


def test_pytorch_model_imports_torch_only(tmp_path):
    code = f"from polyformers import BertModel; {LOADED}"
    assert run_python(code) == ["polyformers_bert", "torch"]


def test_bert_plugin_conforms():
    from polyformers.testing.conformance import check_plugin

    assert check_plugin("polyformers-bert") == []


def test_plugin_listing_reports_bert():
    import polyformers.plugins

    (info,) = [p for p in polyformers.plugins.list_plugins(activate=True) if p.distribution == "polyformers-bert"]
    assert info.status == "active" and info.error is None
    assert info.model_types == ["bert"] and info.frameworks == ["pt", "tf", "flax"]
    assert "BertForSequenceClassification" in info.classes and info.version == "0.1.0"


def test_missing_framework_error_names_the_extra(monkeypatch):
    """TF classes for BERT are not registered yet; a registered class whose framework is missing
    names the extra to install and the frameworks the plugin provides."""
    import polyformers.registry as registry
    from polyformers.errors import FrameworkNotInstalledError

    monkeypatch.setattr(registry, "framework_available", lambda framework: framework != "pt")
    entry = registry.Entry("bert", "polyformers-bert", path="polyformers_bert.modeling_bert:BertModel", framework="pt")
    with pytest.raises(FrameworkNotInstalledError) as excinfo:
        entry.load()
    message = str(excinfo.value)
    assert "pip install 'polyformers-bert[torch]'" in message and "PyTorch" in message


def test_each_framework_class_imports_only_its_framework():
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    # TensorFlow itself imports jax when jax is installed (its Keras 3 probes backends): compare
    # with what a bare `import tensorflow` loads rather than expecting nothing else.
    bare_tf = run_python(f"import tensorflow; {LOADED}")
    assert run_python(f"from polyformers import TFBertModel; {LOADED}") == sorted(set(bare_tf) | {"polyformers_bert"})
    assert "torch" not in bare_tf
    assert run_python(f"from polyformers import FlaxBertModel; {LOADED}") == ["flax", "jax", "polyformers_bert"]


@pytest.mark.parametrize("framework,name,extra", [("tf", "TFBertForMaskedLM", "tf"), ("flax", "FlaxBertForMaskedLM", "flax")])
def test_framework_missing_names_the_extra(monkeypatch, framework, name, extra):
    import polyformers.registry as registry
    from polyformers.errors import FrameworkNotInstalledError

    monkeypatch.setattr(registry, "framework_available", lambda f: f != framework)
    with pytest.raises(FrameworkNotInstalledError) as excinfo:
        registry.Entry("bert", "polyformers-bert", path=f"polyformers_bert.modeling_{framework}_bert:{name}", framework=framework).load()
    message = str(excinfo.value)
    assert f"pip install 'polyformers-bert[{extra}]'" in message
    assert "PyTorch, TensorFlow, JAX/Flax" in message


def test_env_command_lists_versions_and_plugins(capsys):
    from polyformers.cli import main

    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "polyformers-core" in out and "polyformers-bert 0.1.0 (bert)" in out and "torch" in out
