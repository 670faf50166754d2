"""Fuzzing the JSON files of a checkpoint, loaded through the public entry points.

Each example writes one file of a valid tiny checkpoint anew, as random bytes or as a random
JSON value (objects with the keys the loader looks for, holding values of every JSON type), and
loads the directory. Allowed outcomes, per file:

- ``config.json`` (``AutoConfig``, ``BertConfig.from_pretrained``): a config, or ``ConfigError``
  (a ``ValueError``) naming the file, or ``PluginNotInstalledError`` (an ``ImportError``) naming
  the unknown ``model_type``.
- ``tokenizer_config.json``, ``special_tokens_map.json``, ``added_tokens.json``
  (``AutoTokenizer``): a tokenizer, or ``OSError`` naming the file when it is not a JSON object,
  or ``ValueError``/``TypeError`` naming the file when a value has the wrong type.
- ``preprocessor_config.json`` (``AutoFeatureExtractor``): a feature extractor, or ``OSError``
  naming the file, or ``ValueError`` naming the file for a value the class refuses.
- ``model.safetensors.index.json`` (``BertModel.from_pretrained``): a model, or
  ``CheckpointError`` (an ``OSError``) naming the index.

No other exception, no hang past the deadline, no memory growth past the bound (fuzz_support.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, TINY_BERT, MemoryBound, count

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def objects_with(keys):
    """JSON objects holding some of ``keys`` (with values of any JSON type) and random others."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=8)), JSON, max_size=6)


def file_contents(keys, base=None):
    """Random bytes, deep nesting, random JSON, and (with ``base``) a valid file with some values replaced."""
    values = [objects_with(keys), JSON]
    if base is not None:
        values.append(objects_with(keys).map(lambda changes: {**base, **changes}))
        values.append(objects_with(keys).map(lambda changes: {**base, **changes}))
    as_json = st.one_of(*values).map(lambda v: json.dumps(v, allow_nan=True).encode())
    deep = st.integers(100, 100_000).map(lambda n: b"[" * n + b"]" * n)
    return st.one_of(as_json, as_json, st.binary(max_size=256), deep)


CONFIG_KEYS = [
    "model_type", "vocab_size", "hidden_size", "num_labels", "id2label", "label2id", "pruned_heads", "problem_type",
    "torch_dtype", "dtype", "architectures", "attribute_map", "num_attention_heads", "max_position_embeddings",
    "tokenizer_class", "auto_map", "__class__", "__dict__", "name_or_path", "_attn_implementation", "position_embedding_type",
]
TOKENIZER_KEYS = [
    "tokenizer_class", "do_lower_case", "model_max_length", "added_tokens_decoder", "unk_token", "pad_token", "cls_token",
    "additional_special_tokens", "init_inputs", "padding_side", "truncation_side", "tokenize_chinese_chars", "strip_accents",
    "clean_up_tokenization_spaces", "never_split", "name_or_path", "vocab_file", "tokenizer_file", "model_input_names",
]
PREPROCESSOR_KEYS = [
    "feature_extractor_type", "feature_size", "sampling_rate", "padding_value", "padding_side", "return_attention_mask",
    "do_normalize", "processor_class", "image_processor_type", "auto_map", "_processor_class",
]
INDEX_KEYS = ["weight_map", "metadata"]


def _fresh(tmp_path_factory, tiny_checkpoints, kind):
    directory = tmp_path_factory.mktemp("fuzz") / kind
    shutil.copytree(tiny_checkpoints[kind], directory)
    return directory


def _check(target: str, filename: str, load, allowed: tuple[type[BaseException], ...]) -> None:
    with MemoryBound():
        try:
            load()
        except allowed as exc:
            names = (filename, "model type", "model_type")
            assert any(n in str(exc) for n in names), f"{type(exc).__name__} does not name {filename}: {exc}"
            count(target, "rejected")
        else:
            count(target, "ok")


@FUZZ
@given(data=file_contents(CONFIG_KEYS, base={"model_type": "bert", **TINY_BERT}))
def test_fuzz_config_json(tmp_path_factory, tiny_checkpoints, data):
    from polyformers import AutoConfig
    from polyformers.errors import ConfigError, PluginNotInstalledError
    from polyformers_bert.configuration_bert import BertConfig

    directory = _fresh(tmp_path_factory, tiny_checkpoints, "safetensors")
    (directory / "config.json").write_bytes(data)
    _check("config.json (AutoConfig)", "config.json", lambda: AutoConfig.from_pretrained(directory), (ConfigError, PluginNotInstalledError))
    _check("config.json (BertConfig)", "config.json", lambda: BertConfig.from_pretrained(directory), (ConfigError,))


@FUZZ
@given(filename=st.sampled_from(["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]), data=file_contents(TOKENIZER_KEYS, base={"tokenizer_class": "BertTokenizer", "do_lower_case": True}))
def test_fuzz_tokenizer_files(tmp_path_factory, tiny_checkpoints, filename, data):
    from polyformers import AutoTokenizer

    directory = _fresh(tmp_path_factory, tiny_checkpoints, "tokenizer")
    if filename != "tokenizer_config.json":
        # The older layout: without added_tokens_decoder, special_tokens_map.json and added_tokens.json are read.
        config = json.loads((directory / "tokenizer_config.json").read_text())
        config.pop("added_tokens_decoder", None)
        (directory / "tokenizer_config.json").write_text(json.dumps(config))
        (directory / "tokenizer.json").unlink()  # else the fast tokenizer takes its tokens from there
    (directory / filename).write_bytes(data)
    for use_fast in (True, False):
        _check(f"{filename} (AutoTokenizer, use_fast={use_fast})", filename,
               lambda: AutoTokenizer.from_pretrained(directory, use_fast=use_fast), (OSError, ValueError, TypeError))


@FUZZ
@given(data=file_contents(PREPROCESSOR_KEYS, base={"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000, "padding_value": 0.0}))
def test_fuzz_preprocessor_config(tmp_path_factory, tiny_checkpoints, data):
    from polyformers import AutoFeatureExtractor
    from polyformers_wav2vec2.feature_extraction_wav2vec2 import Wav2Vec2FeatureExtractor

    directory = _fresh(tmp_path_factory, tiny_checkpoints, "preprocessor")
    (directory / "preprocessor_config.json").write_bytes(data)
    _check("preprocessor_config.json (AutoFeatureExtractor)", "preprocessor_config.json",
           lambda: AutoFeatureExtractor.from_pretrained(directory), (OSError, ValueError))
    _check("preprocessor_config.json (Wav2Vec2FeatureExtractor)", "preprocessor_config.json",
           lambda: Wav2Vec2FeatureExtractor.from_pretrained(directory), (OSError, ValueError))


def weight_maps():
    names = st.sampled_from(["embeddings.word_embeddings.weight", "pooler.dense.bias", "x", ""])
    files = st.sampled_from(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "missing.safetensors", "../config.json", "/etc/passwd", ".", "", "a\\b"])
    valid = {"embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors", "pooler.dense.bias": "model-00002-of-00002.safetensors"}
    return st.one_of(st.dictionaries(names, st.one_of(files, JSON), max_size=4), st.dictionaries(names, files, max_size=2).map(lambda changes: {**valid, **changes}))


@FUZZ
@given(data=st.one_of(file_contents(INDEX_KEYS), st.fixed_dictionaries({"weight_map": weight_maps()}).map(lambda v: json.dumps(v).encode())))
def test_fuzz_shard_index(tmp_path_factory, tiny_checkpoints, data):
    from polyformers.errors import CheckpointError
    from polyformers_bert.modeling_bert import BertModel

    directory = _fresh(tmp_path_factory, tiny_checkpoints, "sharded")
    (directory / "model.safetensors.index.json").write_bytes(data)
    _check("model.safetensors.index.json (BertModel)", "model.safetensors.index.json", lambda: BertModel.from_pretrained(directory), (CheckpointError,))


# --- regressions the fuzzing found --------------------------------------------------------------


@pytest.mark.parametrize("data", [b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000], ids=["not-utf8", "deep-nesting"])
@pytest.mark.parametrize("filename", ["config.json", "tokenizer_config.json", "preprocessor_config.json", "model.safetensors.index.json"])
def test_undecodable_json_names_the_file(tmp_path_factory, tiny_checkpoints, filename, data):
    from polyformers import AutoConfig, AutoFeatureExtractor, AutoTokenizer
    from polyformers.errors import CheckpointError, ConfigError
    from polyformers_bert.modeling_bert import BertModel

    kind, load, error = {
        "config.json": ("safetensors", AutoConfig.from_pretrained, ConfigError),
        "tokenizer_config.json": ("tokenizer", AutoTokenizer.from_pretrained, OSError),
        "preprocessor_config.json": ("preprocessor", AutoFeatureExtractor.from_pretrained, OSError),
        "model.safetensors.index.json": ("sharded", BertModel.from_pretrained, CheckpointError),
    }[filename]
    directory = _fresh(tmp_path_factory, tiny_checkpoints, kind)
    (directory / filename).write_bytes(data)
    with pytest.raises(error, match=filename):
        load(directory)


def test_special_tokens_map_sets_only_special_tokens(tmp_path_factory, tiny_checkpoints):
    """Found by the fuzzer: a "tokenizer_file" key in special_tokens_map.json reached the fast
    tokenizer as the path of its tokenizer.json. The file holds special tokens only."""
    from polyformers import AutoTokenizer

    directory = _fresh(tmp_path_factory, tiny_checkpoints, "tokenizer")
    config = json.loads((directory / "tokenizer_config.json").read_text())
    config.pop("added_tokens_decoder", None)
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    (directory / "tokenizer.json").unlink()
    (directory / "special_tokens_map.json").write_text(json.dumps({"tokenizer_file": [], "vocab_file": "/etc/passwd", "unk_token": "[UNK]"}))
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert tokenizer.unk_token == "[UNK]" and tokenizer("hello world")["input_ids"] == [2, 5, 6, 3]


@pytest.mark.parametrize(
    "filename, content, error",
    [
        ("config.json", {"model_type": "bert", "id2label": []}, "ConfigError"),
        ("config.json", {"model_type": "bert", "__class__": None}, "ConfigError"),
        ("config.json", {"model_type": [None]}, "ConfigError"),
        ("config.json", {"model_type": "bert", "problem_type": []}, "ConfigError"),
        ("tokenizer_config.json", {"tokenizer_class": 1}, "ValueError"),
        ("tokenizer_config.json", {"tokenizer_class": "BertTokenizer", "do_lower_case": None, "added_tokens_decoder": {"x": {}}}, "ValueError"),
        ("preprocessor_config.json", {"feature_extractor_type": 1}, "ValueError"),
        ("preprocessor_config.json", {"feature_extractor_type": "NoSuchFeatureExtractor"}, "ValueError"),
        ("preprocessor_config.json", {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "padding_side": None}, "ValueError"),
        ("model.safetensors.index.json", {"weight_map": {}}, "CheckpointError"),
    ],
)
def test_values_of_the_wrong_type_raise_typed_errors_naming_the_file(tmp_path_factory, tiny_checkpoints, filename, content, error):
    """Found by the fuzzer: each of these escaped as AttributeError, TypeError, IndexError or a message without the file."""
    from polyformers import AutoConfig, AutoFeatureExtractor, AutoTokenizer
    from polyformers.errors import CheckpointError, ConfigError
    from polyformers_bert.modeling_bert import BertModel

    kind, load = {
        "config.json": ("safetensors", AutoConfig.from_pretrained),
        "tokenizer_config.json": ("tokenizer", AutoTokenizer.from_pretrained),
        "preprocessor_config.json": ("preprocessor", AutoFeatureExtractor.from_pretrained),
        "model.safetensors.index.json": ("sharded", BertModel.from_pretrained),
    }[filename]
    expected = {"ConfigError": ConfigError, "ValueError": ValueError, "CheckpointError": CheckpointError}[error]
    directory = _fresh(tmp_path_factory, tiny_checkpoints, kind)
    (directory / filename).write_text(json.dumps(content))
    with pytest.raises(expected) as info:
        load(directory)
    assert filename in str(info.value)
