"""``PretrainedConfig``: reading and writing ``config.json`` the way Transformers does."""

from __future__ import annotations

import copy
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from polyformers import io_utils
from polyformers.auto import AutoConfig
from polyformers.configuration_utils import CONFIG_NAME, PreTrainedConfig, PretrainedConfig
from polyformers.errors import ConfigError


class TinyConfig(PretrainedConfig):
    model_type = "tiny-config-test"
    attribute_map = {"hidden_dim": "hidden_size"}

    def __init__(self, hidden_size: int = 8, num_layers: int = 2, tie_word_embeddings: bool = False, **kwargs: Any):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


def write_json(directory: Path, data: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(data), encoding="utf-8")
    return directory


def saved_json(directory: Path) -> dict[str, Any]:
    return json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))


# --- labels ------------------------------------------------------------------------------------


def test_id2label_has_str_keys_in_json_and_int_keys_in_memory(tmp_path):
    config = PretrainedConfig(id2label={"0": "neg", "1": "pos", "2": "neutral"})
    assert config.id2label == {0: "neg", 1: "pos", 2: "neutral"}
    assert config.label2id == {"neg": 0, "pos": 1, "neutral": 2}
    assert config.num_labels == 3

    config.save_pretrained(tmp_path)
    on_disk = saved_json(tmp_path)
    assert on_disk["id2label"] == {"0": "neg", "1": "pos", "2": "neutral"}
    assert on_disk["label2id"] == {"neg": 0, "pos": 1, "neutral": 2}

    loaded = PretrainedConfig.from_pretrained(tmp_path)
    assert loaded.id2label == {0: "neg", 1: "pos", 2: "neutral"}
    assert loaded.label2id == {"neg": 0, "pos": 1, "neutral": 2}
    assert loaded.num_labels == 3
    assert loaded == config


def test_num_labels_builds_default_labels():
    config = PretrainedConfig()
    assert config.num_labels == 2 and config.id2label == {0: "LABEL_0", 1: "LABEL_1"}

    config = PretrainedConfig(num_labels=4)
    assert config.id2label == {i: f"LABEL_{i}" for i in range(4)}
    assert config.label2id == {f"LABEL_{i}": i for i in range(4)}

    config.num_labels = 3
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert config.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}

    named = PretrainedConfig(id2label={0: "a", 1: "b"})
    named.num_labels = 2  # same count: the names are kept
    assert named.id2label == {0: "a", 1: "b"}


def test_label_errors_say_what_is_wrong(caplog):
    # Like Transformers, a disagreeing num_labels only warns: id2label wins.
    assert PretrainedConfig(num_labels=3, id2label={0: "a", 1: "b"}).num_labels == 2
    assert "num_labels=3 disagrees with id2label, which has 2 labels" in caplog.text
    with pytest.raises(ConfigError, match="non-negative int, got -1"):
        PretrainedConfig(num_labels=-1)
    with pytest.raises(ValueError, match="got '3'"):  # ConfigError is a ValueError
        PretrainedConfig().num_labels = "3"


def test_explicit_label2id_is_kept():
    config = PretrainedConfig(id2label={0: "a", 1: "b"}, label2id={"a": "0", "b": "1"})
    assert config.label2id == {"a": 0, "b": 1}


# --- dtype -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["dtype", "torch_dtype"])
def test_dtype_and_torch_dtype_are_both_read(tmp_path, key):
    directory = write_json(tmp_path, {key: "bfloat16", "hidden_size": 4})
    config = PretrainedConfig.from_pretrained(directory)
    assert config.dtype == "bfloat16" and config.torch_dtype == "bfloat16"

    config.save_pretrained(tmp_path / "again")
    assert saved_json(tmp_path / "again")["torch_dtype"] == "bfloat16"
    assert PretrainedConfig.from_pretrained(tmp_path / "again").dtype == "bfloat16"


def test_dtype_objects_are_stored_by_name(tmp_path):
    class FrameworkDtype:  # what str(torch.float16) looks like, without importing torch
        def __str__(self) -> str:
            return "torch.float16"

    assert PretrainedConfig(torch_dtype=FrameworkDtype()).torch_dtype == "float16"
    assert PretrainedConfig(dtype=FrameworkDtype()).dtype == "float16"
    config = PretrainedConfig()
    config.dtype = FrameworkDtype()
    assert config.torch_dtype == "float16"
    assert "torch_dtype" not in PretrainedConfig().to_diff_dict()  # None is the default

    directory = write_json(tmp_path, {"torch_dtype": "float16"})
    assert PretrainedConfig.from_pretrained(directory, dtype="float32").torch_dtype == "float32"
    assert PretrainedConfig.from_pretrained(directory, torch_dtype="bfloat16").dtype == "bfloat16"


# --- what is written ---------------------------------------------------------------------------


def test_only_non_default_values_are_written(tmp_path):
    config = TinyConfig(hidden_size=16, output_attentions=True, pad_token_id=0)
    config.save_pretrained(tmp_path)
    on_disk = saved_json(tmp_path)

    for key in ("hidden_size", "num_layers", "output_attentions", "pad_token_id", "model_type", "transformers_version"):
        assert key in on_disk, key
    assert (on_disk["hidden_size"], on_disk["model_type"]) == (16, "tiny-config-test")
    for key in ("return_dict", "output_hidden_states", "torchscript", "pruned_heads", "torch_dtype", "id2label", "label2id", "problem_type"):
        assert key not in on_disk, key
    for private in ("_name_or_path", "name_or_path", "_attn_implementation_internal", "_commit_hash"):
        assert private not in on_disk, private

    # Differs from the base default (True) but is this class's default: written, as Transformers does.
    assert on_disk["tie_word_embeddings"] is False
    # Equals the base default but differs from this class's default: written too.
    assert TinyConfig(tie_word_embeddings=True).to_diff_dict()["tie_word_embeddings"] is True

    full = json.loads(config.to_json_string(use_diff=False))
    assert {"return_dict", "torchscript", "id2label", "label2id"} <= set(full)
    assert full["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}


def test_unknown_keys_are_kept_and_round_tripped(tmp_path):
    extra = {"custom_flag": True, "layer_sizes": [3, 5], "nested": {"a": {"b": None}}, "rope_scaling": None}
    directory = write_json(tmp_path / "in", {"model_type": "tiny-config-test", "hidden_size": 4, **extra})

    config = TinyConfig.from_pretrained(directory)
    assert (config.custom_flag, config.layer_sizes, config.nested) == (True, [3, 5], {"a": {"b": None}})

    config.save_pretrained(tmp_path / "out")
    on_disk = saved_json(tmp_path / "out")
    for key, value in extra.items():
        assert on_disk[key] == value, key
    assert TinyConfig.from_pretrained(tmp_path / "out") == config


def test_attribute_map_renames_attributes(tmp_path):
    config = TinyConfig(hidden_dim=32)
    assert config.hidden_size == 32 and config.hidden_dim == 32
    config.hidden_dim = 64
    assert config.hidden_size == 64
    assert "hidden_dim" not in config.to_dict()
    config.save_pretrained(tmp_path)
    assert TinyConfig.from_pretrained(tmp_path, hidden_dim=7).hidden_size == 7


def test_copy_pickle_and_alias():
    config = TinyConfig(hidden_size=12, id2label={0: "x"})
    assert copy.deepcopy(config) == config
    assert pickle.loads(pickle.dumps(config)) == config
    assert PreTrainedConfig is PretrainedConfig


# --- from_pretrained keyword arguments ---------------------------------------------------------


def test_from_pretrained_kwargs_override_and_unused_kwargs_are_returned(tmp_path):
    directory = write_json(tmp_path, {"model_type": "tiny-config-test", "hidden_size": 4, "custom_flag": False, "id2label": {"0": "a", "1": "b"}})

    config, unused = TinyConfig.from_pretrained(
        directory, hidden_size=10, custom_flag=True, num_labels=5, not_an_attribute=1, return_unused_kwargs=True
    )
    assert (config.hidden_size, config.custom_flag, config.num_labels) == (10, True, 5)
    assert config.id2label == {i: f"LABEL_{i}" for i in range(5)}
    assert unused == {"not_an_attribute": 1}
    assert config.name_or_path == str(directory)

    plain = TinyConfig.from_pretrained(directory, hidden_size=10, not_an_attribute=1)
    assert isinstance(plain, TinyConfig) and plain.hidden_size == 10
    assert not hasattr(plain, "not_an_attribute")

    config_file = TinyConfig.from_pretrained(directory / CONFIG_NAME)  # a file path works too
    assert config_file.hidden_size == 4


def test_auto_config_passes_overrides_and_unused_kwargs(tmp_path):
    AutoConfig.register("tiny-config-test", TinyConfig)
    directory = write_json(tmp_path, {"model_type": "tiny-config-test", "hidden_size": 4})
    config, unused = AutoConfig.from_pretrained(directory, num_layers=6, foo="bar", return_unused_kwargs=True)
    assert type(config) is TinyConfig and config.num_layers == 6
    assert unused == {"foo": "bar"}


# --- bad input ---------------------------------------------------------------------------------


def test_invalid_json_names_the_file(tmp_path):
    (tmp_path / CONFIG_NAME).write_text('{"hidden_size": 4,', encoding="utf-8")
    for load in (PretrainedConfig.from_pretrained, AutoConfig.from_pretrained):
        with pytest.raises(ConfigError, match="is not valid JSON") as excinfo:
            load(tmp_path)
        assert str(tmp_path / CONFIG_NAME) in str(excinfo.value)
        assert isinstance(excinfo.value, ValueError)


def test_json_that_is_not_an_object_names_the_file(tmp_path):
    write_json(tmp_path, [1, 2])
    with pytest.raises(ConfigError, match="must hold a JSON object, got list") as excinfo:
        PretrainedConfig.from_pretrained(tmp_path)
    assert str(tmp_path / CONFIG_NAME) in str(excinfo.value)


def test_missing_config_json_names_the_directory(tmp_path):
    with pytest.raises(OSError, match="has no config.json") as excinfo:
        PretrainedConfig.from_pretrained(tmp_path)
    assert str(tmp_path) in str(excinfo.value)


def test_config_json_without_model_type_cannot_pick_a_class(tmp_path):
    write_json(tmp_path, {"hidden_size": 4})
    with pytest.raises(ConfigError, match="has no 'model_type' key"):
        AutoConfig.from_pretrained(tmp_path)


def test_bad_problem_type_lists_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match="regression, single_label_classification, multi_label_classification.*got 'classification'"):
        PretrainedConfig(problem_type="classification")
    write_json(tmp_path, {"problem_type": "multi-label"})
    with pytest.raises(ConfigError, match="'multi-label'"):
        PretrainedConfig.from_pretrained(tmp_path)
    assert PretrainedConfig(problem_type="regression").problem_type == "regression"


# --- atomic save -------------------------------------------------------------------------------


def _listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_save_pretrained_creates_the_directory_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "b"
    TinyConfig(hidden_size=3).save_pretrained(target)
    TinyConfig(hidden_size=5).save_pretrained(target)  # overwrite
    assert _listing(target) == [CONFIG_NAME]
    assert saved_json(target)["hidden_size"] == 5
    mode = os.stat(target / CONFIG_NAME).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not the 0600 of a raw temporary file


def test_failed_serialisation_leaves_the_old_file(tmp_path):
    TinyConfig(hidden_size=3).save_pretrained(tmp_path)
    before = (tmp_path / CONFIG_NAME).read_bytes()
    config = TinyConfig(hidden_size=99)
    config.unserialisable = object()
    with pytest.raises(TypeError):
        config.save_pretrained(tmp_path)
    assert (tmp_path / CONFIG_NAME).read_bytes() == before
    assert _listing(tmp_path) == [CONFIG_NAME]


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    TinyConfig(hidden_size=3).save_pretrained(tmp_path)
    before = (tmp_path / CONFIG_NAME).read_bytes()

    def write_half_then_fail(path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)

        def write(text):
            f.buffer.write(text[: len(text) // 2].encode())
            f.flush()
            raise OSError(28, "No space left on device")

        f.write = write
        return f

    monkeypatch.setattr(io_utils, "open", write_half_then_fail, raising=False)
    with pytest.raises(OSError, match="No space left"):
        TinyConfig(hidden_size=99).save_pretrained(tmp_path)
    assert (tmp_path / CONFIG_NAME).read_bytes() == before
    assert _listing(tmp_path) == [CONFIG_NAME]


def test_failed_rename_leaves_the_old_file(tmp_path, monkeypatch):
    TinyConfig(hidden_size=3).save_pretrained(tmp_path)
    before = (tmp_path / CONFIG_NAME).read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # interrupted at the worst moment

    monkeypatch.setattr(io_utils.os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        TinyConfig(hidden_size=99).save_pretrained(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / CONFIG_NAME).read_bytes() == before
    assert _listing(tmp_path) == [CONFIG_NAME]


def test_save_pretrained_into_a_file_path_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        PretrainedConfig().save_pretrained(tmp_path / "file")


# --- compatibility with Hugging Face Transformers ----------------------------------------------


@pytest.fixture(scope="module")
def transformers_bert_config():
    transformers = pytest.importorskip("transformers")
    config_class = getattr(transformers, "BertConfig", None)
    if config_class is None:
        pytest.skip("transformers has no BertConfig")
    major = int(transformers.__version__.split(".")[0])
    return config_class, ("dtype" if major >= 5 else "torch_dtype")


LABELS = {0: "negative", 1: "positive", 2: "neutral"}


def test_a_config_written_by_transformers_loads_here(tmp_path, transformers_bert_config):
    BertConfig, dtype_key = transformers_bert_config
    theirs = BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        id2label=LABELS, problem_type="single_label_classification", custom_key=[1, 2], **{dtype_key: "bfloat16"},
    )  # fmt: skip
    theirs.save_pretrained(tmp_path)

    ours = PretrainedConfig.from_pretrained(tmp_path)
    assert ours.model_type == "bert"
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "pad_token_id", "problem_type", "custom_key"):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert ours.id2label == LABELS and ours.num_labels == 3
    assert ours.label2id == {label: i for i, label in LABELS.items()}
    assert ours.dtype == "bfloat16"


def test_a_config_written_here_loads_in_transformers(tmp_path, transformers_bert_config):
    BertConfig, _ = transformers_bert_config

    class OurBertConfig(PretrainedConfig):
        model_type = "bert"

        def __init__(self, vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, **kwargs):
            self.vocab_size = vocab_size
            self.hidden_size = hidden_size
            self.num_hidden_layers = num_hidden_layers
            self.num_attention_heads = num_attention_heads
            self.intermediate_size = intermediate_size
            super().__init__(**kwargs)

    ours = OurBertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        id2label=LABELS, torch_dtype="bfloat16", custom_key=[1, 2], pad_token_id=1,
    )  # fmt: skip
    ours.save_pretrained(tmp_path)

    theirs = BertConfig.from_pretrained(tmp_path)
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "pad_token_id", "custom_key"):
        assert getattr(theirs, key) == getattr(ours, key), key
    assert theirs.id2label == LABELS and theirs.num_labels == 3
    assert theirs.label2id == {label: i for i, label in LABELS.items()}
    their_dtype = getattr(theirs, "dtype", None) or theirs.torch_dtype
    assert str(their_dtype).split(".")[-1] == "bfloat16"

    # And back again: what Transformers re-saves loads here unchanged.
    theirs.save_pretrained(tmp_path / "again")
    back = OurBertConfig.from_pretrained(tmp_path / "again")
    for key in ("vocab_size", "hidden_size", "id2label", "label2id", "dtype", "custom_key", "pad_token_id"):
        assert getattr(back, key) == getattr(ours, key), key
