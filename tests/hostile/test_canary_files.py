"""Hostile checkpoint directories: nothing in them may run code or import modules.

A pickle whose ``__reduce__`` creates a sentinel file must be refused by the safe unpickler with a
typed error, and names of modules written into config.json / tokenizer_config.json must never be
imported. Each test checks the sentinel file afterwards: the attack leaves a mark if it ran.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import sys

import pytest
import torch

from hostile_guards import TouchOnUnpickle, sentinel  # noqa: F401  (a fixture)
from polyformers import AutoConfig, AutoModel, AutoTokenizer
from polyformers.errors import CheckpointError
from polyformers_bert.configuration_bert import BertConfig
from polyformers_bert.modeling_bert import BertModel

CANARY_MODULE = "evil_canary_module"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]

# --- an audit hook recording imports --------------------------------------------------------
# Audit hooks cannot be removed, so one hook is installed once and records only while a test
# has switched it on.
_recording: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "import" and _recording:
        _recording[-1].append(args[0])


_hook_installed = False


@pytest.fixture
def imported_modules():
    """The names of modules imported while the test runs."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    names: list[str] = []
    _recording.append(names)
    try:
        yield names
    finally:
        _recording.remove(names)


def tiny_config(**kwargs) -> BertConfig:
    return BertConfig(
        vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=8, max_position_embeddings=32, **kwargs,
    )


@pytest.fixture
def canary_module(tmp_path, monkeypatch, sentinel):
    """A module on sys.path that creates the sentinel when imported."""
    src = tmp_path / "site"
    src.mkdir()
    (src / f"{CANARY_MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n"
        "class EvilModel: pass\nclass EvilConfig: pass\nclass EvilTokenizer: pass\n"
        "def attention(*args, **kwargs): pass\n"
    )
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delitem(sys.modules, CANARY_MODULE, raising=False)
    yield CANARY_MODULE
    assert CANARY_MODULE not in sys.modules


def test_the_detectors_see_an_import(canary_module, imported_modules, sentinel):
    """Control: importing the canary is recorded and leaves the sentinel, so the checks below can fail."""
    __import__(canary_module)
    assert canary_module in imported_modules and sentinel.exists()
    sentinel.unlink()
    del sys.modules[canary_module]


def write_pickle_checkpoint(directory: pathlib.Path, sentinel: pathlib.Path, fmt: str) -> None:
    directory.mkdir()
    tiny_config().save_pretrained(directory)
    payload = {"embeddings.word_embeddings.weight": torch.zeros(len(VOCAB), 16), "evil": TouchOnUnpickle(sentinel)}
    path = directory / "pytorch_model.bin"
    if fmt == "zip":
        torch.save(payload, path)  # the zip format torch.save writes since 1.6
    else:
        with open(path, "wb") as f:  # a bare pickle, as very old checkpoints are
            pickle.dump(payload, f, protocol=2)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("load", [AutoModel.from_pretrained, BertModel.from_pretrained], ids=["AutoModel", "BertModel"])
def test_pickle_with_reduce_is_refused(tmp_path, sentinel, fmt, load):
    model_dir = tmp_path / "model"
    write_pickle_checkpoint(model_dir, sentinel, fmt)

    with pytest.raises(CheckpointError) as info:
        load(model_dir)

    assert isinstance(info.value, OSError)  # what Transformers users catch
    assert "pytorch_model.bin" in str(info.value)
    assert not sentinel.exists()


def test_pickle_refusal_message_names_the_fix(tmp_path, sentinel):
    model_dir = tmp_path / "model"
    write_pickle_checkpoint(model_dir, sentinel, "zip")
    with pytest.raises(CheckpointError, match="weights_only=False"):
        BertModel.from_pretrained(model_dir)


def write_hostile_config_dir(directory: pathlib.Path, module: str) -> None:
    """A valid tiny BERT checkpoint whose JSON files name a module to import."""
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(directory)
    config = json.loads((directory / "config.json").read_text())
    config.update(
        auto_map={
            "AutoConfig": f"{module}.EvilConfig",
            "AutoModel": f"{module}.EvilModel",
            "AutoTokenizer": [f"{module}.EvilTokenizer", None],
        },
        tokenizer_class=f"{module}.EvilTokenizer",
        architectures=[f"{module}.EvilModel"],
    )
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": [f"{module}.EvilTokenizer", None]}}))


def test_config_module_names_are_never_imported(tmp_path, canary_module, imported_modules, sentinel):
    model_dir = tmp_path / "model"
    write_hostile_config_dir(model_dir, canary_module)

    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)

    assert config.model_type == "bert"
    assert type(model).__name__ == "BertModel"
    assert type(tokenizer).__name__.startswith("BertTokenizer")
    assert not any(name.split(".")[0] == canary_module for name in imported_modules)
    assert not sentinel.exists()


@pytest.mark.parametrize("value", ["os.system", f"{CANARY_MODULE}.EvilTokenizer", f"{CANARY_MODULE}:EvilTokenizer"])
def test_tokenizer_class_naming_a_module_is_not_imported(tmp_path, canary_module, imported_modules, sentinel, value):
    model_dir = tmp_path / "model"
    write_hostile_config_dir(model_dir, canary_module)
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": value}))

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (ValueError, OSError, ImportError, AttributeError):
        pass  # refusing the name is fine; running it is not
    else:
        assert type(tokenizer).__name__.startswith("BertTokenizer")
    assert not any(name.split(".")[0] == canary_module for name in imported_modules)
    assert not sentinel.exists()


@pytest.mark.parametrize("value", [f"{CANARY_MODULE}.attention", f"{CANARY_MODULE}:attention", "os.system"])
def test_attn_implementation_naming_a_module_is_not_imported(tmp_path, canary_module, imported_modules, sentinel, value):
    model_dir = tmp_path / "model"
    write_hostile_config_dir(model_dir, canary_module)
    config = json.loads((model_dir / "config.json").read_text())
    config["attn_implementation"] = value
    (model_dir / "config.json").write_text(json.dumps(config))

    try:
        model = AutoModel.from_pretrained(model_dir)
        model(torch.tensor([[2, 5, 6, 3]]))
    except (ValueError, NotImplementedError, KeyError):
        pass  # refusing the value is fine; importing it is not
    assert not any(name.split(".")[0] == canary_module for name in imported_modules)
    assert not sentinel.exists()
