"""AutoTokenizer picks the fast tokenizer like Transformers, and finds the class from any saved layout."""

from __future__ import annotations

import json

import pytest

from polyformers import AutoTokenizer, BertTokenizer, BertTokenizerFast

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s"]


@pytest.fixture
def vocab_dir(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return tmp_path


def test_prefers_fast_and_honours_use_fast(vocab_dir):
    (vocab_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    fast = AutoTokenizer.from_pretrained(vocab_dir)
    slow = AutoTokenizer.from_pretrained(vocab_dir, use_fast=False)
    assert type(fast) is BertTokenizerFast and type(slow) is BertTokenizer
    assert fast("Hello worlds")["input_ids"] == slow("Hello worlds")["input_ids"] == [2, 5, 6, 7, 3]


@pytest.mark.parametrize("tokenizer_class", ["BertTokenizer", "BertTokenizerFast", "BertTokenizerLegacy"])
def test_tokenizer_class_without_config_json(vocab_dir, tokenizer_class):
    (vocab_dir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class, "do_lower_case": True}))
    assert type(AutoTokenizer.from_pretrained(vocab_dir)) is BertTokenizerFast
    assert type(AutoTokenizer.from_pretrained(vocab_dir, use_fast=False)) is BertTokenizer


def test_no_hint_at_all_says_what_to_do(vocab_dir):
    with pytest.raises(ValueError, match="no 'tokenizer_class' and there is no config.json"):
        AutoTokenizer.from_pretrained(vocab_dir)


def test_transformers_saved_tokenizers_load(tmp_path):
    transformers = pytest.importorskip("transformers")
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    theirs = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    theirs.save_pretrained(tmp_path / "saved")
    ours = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert ours("hello worlds")["input_ids"] == theirs("hello worlds")["input_ids"]


@pytest.mark.parametrize("return_tensors,module", [("pt", "torch"), ("np", "numpy"), ("tf", "tensorflow"), ("jax", "jax")])
@pytest.mark.parametrize("use_fast", [True, False])
def test_return_tensors_for_every_framework(vocab_dir, return_tensors, module, use_fast):
    framework = pytest.importorskip(module)
    (vocab_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    tokenizer = AutoTokenizer.from_pretrained(vocab_dir, use_fast=use_fast)
    batch = tokenizer(["hello worlds", "hello"], padding=True, return_tensors=return_tensors)
    ids = batch["input_ids"]
    assert type(ids).__module__.split(".")[0] in (module, "jaxlib", "tensorflow")
    assert tuple(ids.shape) == (2, 5)
    assert framework is not None
