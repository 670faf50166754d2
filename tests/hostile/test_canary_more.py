"""More canaries: every file we might unpickle or "load code" from, and config values that look like
module paths or repo ids. The attack leaves a sentinel file if it ran; none may appear, no pickle
global may be resolved, no code object unmarshalled, no module outside the installed plugins
imported, and no connection attempted.

- A Trainer checkpoint: a ``__reduce__`` pickle as ``optimizer.pt`` / ``scheduler.pt`` (read with
  ``torch.load(weights_only=True)``), as ``rng_state.json`` (read as JSON) and as
  ``training_args.bin`` (Transformers' pickle of the arguments, which we never read).
- Tokenizer and processor files (``tokenizer.json``, ``vocab.txt``, ``tokenizer_config.json``,
  ``special_tokens_map.json``, ``added_tokens.json``, ``preprocessor_config.json``, Wav2Vec2's
  ``vocab.json``) replaced by the pickle: a typed error, or the file ignored.
- ``tf_model.h5`` carrying a Keras ``model_config`` with a ``Lambda`` layer whose function is a
  marshalled code object (how Keras 2 saves lambdas): our h5 reader reads weights only.
- ``config.json`` naming classes and repos (``tokenizer_class``, ``feature_extractor_type``,
  ``image_processor_type``, ``processor_class``, ``auto_map``, ``_name_or_path``, DETR's
  ``backbone`` with ``use_timm_backbone`` and ``use_pretrained_backbone``).
"""

from __future__ import annotations

import base64
import json
import marshal
import pathlib
import pickle
import shutil
import subprocess
import sys

import pytest
import torch

from hostile_guards import TouchOnUnpickle, code_events, connection_attempts, imports_seen, sentinel  # noqa: F401  (fixtures)
from polyformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor, AutoTokenizer
from polyformers.errors import CheckpointError, ConfigError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]
CTC_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5}
REPO = "attacker/evil-repo"


def ran_attack(events, sentinel: pathlib.Path) -> list:
    """The audit events that resolved the canary's global (pathlib.Path) or unmarshalled its code."""
    marker = str(sentinel).encode()
    return [
        (event, str(args)[:120]) for event, args in events
        if (event == "pickle.find_class" and args[0] == "pathlib") or (event == "marshal.loads" and marker in bytes(args[0]))
    ]


def canary_pickle(sentinel: pathlib.Path) -> bytes:
    return pickle.dumps({"state": {}, "evil": TouchOnUnpickle(sentinel)}, protocol=2)


def canary_torch_file(path: pathlib.Path, sentinel: pathlib.Path) -> None:
    torch.save({"state": {}, "param_groups": [], "evil": TouchOnUnpickle(sentinel)}, path)


# --- Trainer checkpoints -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Trainer run of one step with a saved checkpoint-1; returns (output_dir, make_trainer)."""
    from polyformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    out = tmp_path_factory.mktemp("trainer-canary") / "run"
    rows = [{"input_ids": [2, 5 + i % 2, 3], "attention_mask": [1, 1, 1], "labels": i % 2} for i in range(8)]

    def make_trainer(output_dir):
        torch.manual_seed(0)
        config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=16, num_labels=2)
        args = TrainingArguments(output_dir=str(output_dir), max_steps=2, save_steps=1, per_device_train_batch_size=4, report_to=[], logging_steps=1)
        return Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=rows)

    make_trainer(out).train()
    assert (out / "checkpoint-1" / "optimizer.pt").is_file()
    return out, make_trainer


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt"])
def test_canary_in_a_trainer_checkpoint_is_refused_naming_the_file(trained, tmp_path, sentinel, code_events, name):
    out, make_trainer = trained
    checkpoint = tmp_path / "checkpoint-1"
    shutil.copytree(out / "checkpoint-1", checkpoint)
    canary_torch_file(checkpoint / name, sentinel)

    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as info:
        make_trainer(tmp_path / "resumed").train(resume_from_checkpoint=str(checkpoint))
    assert "weights_only" in str(info.value)
    assert not sentinel.exists()


def test_canary_rng_state_and_training_args_bin(trained, tmp_path, sentinel, code_events):
    out, make_trainer = trained
    checkpoint = tmp_path / "checkpoint-1"
    shutil.copytree(out / "checkpoint-1", checkpoint)
    (checkpoint / "training_args.bin").write_bytes(canary_pickle(sentinel))  # Transformers' pickle: never read
    make_trainer(tmp_path / "resumed").train(resume_from_checkpoint=str(checkpoint))

    (checkpoint / "rng_state.json").write_bytes(canary_pickle(sentinel))
    with pytest.raises(CheckpointError, match=r"rng_state\.json"):
        make_trainer(tmp_path / "resumed-again").train(resume_from_checkpoint=str(checkpoint))
    assert not sentinel.exists()
    assert ran_attack(code_events, sentinel) == []


# --- tokenizer and processor files -------------------------------------------------------------


@pytest.fixture(scope="module")
def processor_dirs(tmp_path_factory):
    from polyformers_bert.tokenization_bert_fast import BertTokenizerFast
    from polyformers_wav2vec2.feature_extraction_wav2vec2 import Wav2Vec2FeatureExtractor
    from polyformers_wav2vec2.processing_wav2vec2 import Wav2Vec2Processor
    from polyformers_wav2vec2.tokenization_wav2vec2 import Wav2Vec2CTCTokenizer

    root = tmp_path_factory.mktemp("processors")
    bert = root / "bert"
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    tokenizer.add_tokens(["newword"])  # so added_tokens.json / tokenizer.json carry added tokens
    tokenizer.save_pretrained(bert)
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (bert / "added_tokens.json").write_text(json.dumps({"newword": len(VOCAB)}))

    w2v = root / "wav2vec2"
    w2v.mkdir()
    (root / "ctc_vocab.json").write_text(json.dumps(CTC_VOCAB))
    Wav2Vec2Processor(feature_extractor=Wav2Vec2FeatureExtractor(sampling_rate=16000), tokenizer=Wav2Vec2CTCTokenizer(str(root / "ctc_vocab.json"))).save_pretrained(w2v)
    (w2v / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    return {"bert": bert, "wav2vec2": w2v}


PROCESSOR_FILES = [
    ("bert", "tokenizer.json", AutoTokenizer),
    ("bert", "vocab.txt", AutoTokenizer),
    ("bert", "tokenizer_config.json", AutoTokenizer),
    ("bert", "special_tokens_map.json", AutoTokenizer),
    ("bert", "added_tokens.json", AutoTokenizer),
    ("wav2vec2", "preprocessor_config.json", AutoFeatureExtractor),
    ("wav2vec2", "preprocessor_config.json", AutoProcessor),
    ("wav2vec2", "vocab.json", AutoTokenizer),
    ("wav2vec2", "vocab.json", AutoProcessor),
    ("wav2vec2", "tokenizer_config.json", AutoProcessor),
    ("wav2vec2", "special_tokens_map.json", AutoTokenizer),
]


@pytest.mark.parametrize("family, name, loader", PROCESSOR_FILES, ids=[f"{f}-{n}-{loader.__name__}" for f, n, loader in PROCESSOR_FILES])
def test_canary_tokenizer_or_processor_file_is_refused_or_ignored(processor_dirs, tmp_path, sentinel, code_events, connection_attempts, family, name, loader):
    directory = tmp_path / family
    shutil.copytree(processor_dirs[family], directory)
    (directory / name).write_bytes(canary_pickle(sentinel))
    try:
        loaded = loader.from_pretrained(directory)
    except (OSError, ValueError, TypeError) as exc:  # typed refusal: it must say which file
        assert name in str(exc) or "vocab" in str(exc).lower(), f"{type(exc).__name__} does not name {name}: {exc}"
    else:
        assert loaded is not None  # the file was ignored (a tokenizer.json falls back to vocab.txt, ...)
    assert not sentinel.exists()
    assert ran_attack(code_events, sentinel) == []
    assert connection_attempts == []


# --- tf_model.h5 with a Keras Lambda layer -----------------------------------------------------


def keras_lambda_config(sentinel: pathlib.Path) -> str:
    """A Keras 2 ``model_config`` whose Lambda layer holds a marshalled function that touches ``sentinel``."""
    source = f"def f(x):\n    import pathlib\n    pathlib.Path({str(sentinel)!r}).touch()\n    return x\n"
    namespace: dict = {}
    exec(compile(source, "<attack>", "exec"), namespace)  # noqa: S102 - building the attack, not loading it
    code = base64.b64encode(marshal.dumps(namespace["f"].__code__)).decode("ascii")
    layer = {"class_name": "Lambda", "config": {"name": "evil", "function": [code, None, None], "function_type": "lambda", "module": "builtins", "arguments": {}}}
    return json.dumps({"class_name": "Functional", "config": {"name": "model", "layers": [layer], "input_layers": [], "output_layers": []}})


def test_tf_h5_with_a_lambda_layer_is_read_as_weights_only(tmp_path, sentinel, connection_attempts, imports_seen, code_events):
    h5py = pytest.importorskip("h5py")
    from polyformers_bert.configuration_bert import BertConfig
    from polyformers_bert.modeling_bert import BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=16)
    BertModel(config).save_pretrained(tmp_path / "pt")
    # Converted in a child process, so that this one never imports TensorFlow or Keras.
    subprocess.run([sys.executable, "-c", "import sys; from polyformers.convert import convert; convert(sys.argv[1], sys.argv[2], to='tf')",
                    str(tmp_path / "pt"), str(tmp_path / "tf")], check=True, capture_output=True, timeout=120)
    tf_loaded_before = {"tensorflow", "keras"} & set(sys.modules)
    h5_path = tmp_path / "tf" / "tf_model.h5"
    with h5py.File(h5_path, "a") as f:  # what keras.Model.save("model.h5") writes beside the weights
        f.attrs["model_config"] = keras_lambda_config(sentinel)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["training_config"] = json.dumps({"loss": {"class_name": "Lambda"}})

    model = BertModel.from_pretrained(tmp_path / "tf", from_tf=True)
    expected = BertModel.from_pretrained(tmp_path / "pt")
    for (name, ours), theirs in zip(model.state_dict().items(), expected.state_dict().values()):
        torch.testing.assert_close(ours, theirs, msg=name)
    assert not sentinel.exists()
    assert ran_attack(code_events, sentinel) == []
    if not tf_loaded_before:  # reading the h5 needs h5py only
        assert not {"tensorflow", "keras"} & set(sys.modules), "loading tf_model.h5 imported TensorFlow or Keras"
    assert connection_attempts == []


# --- config values naming classes and repos ----------------------------------------------------


def test_config_class_names_and_repo_ids_are_never_imported_or_fetched(tmp_path, processor_dirs, connection_attempts, imports_seen):
    from polyformers_bert.configuration_bert import BertConfig
    from polyformers_bert.modeling_bert import BertModel

    directory = tmp_path / "model"
    BertModel(BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=16)).save_pretrained(directory)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        shutil.copy(processor_dirs["bert"] / name, directory / name)
    hostile = {
        "tokenizer_class": REPO, "feature_extractor_type": REPO, "image_processor_type": REPO, "processor_class": REPO,
        "_name_or_path": REPO, "name_or_path": REPO, "architectures": [f"{REPO}.EvilModel"],
        "auto_map": {"AutoConfig": f"{REPO}--evil.EvilConfig", "AutoModel": f"{REPO}--evil.EvilModel", "AutoTokenizer": [f"{REPO}--evil.EvilTokenizer", None]},
        "custom_pipelines": {"evil-task": {"impl": f"{REPO}--evil.EvilPipeline", "pt": ["AutoModel"]}},
    }
    config = json.loads((directory / "config.json").read_text())
    config.update(hostile)
    (directory / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((directory / "tokenizer_config.json").read_text())
    tokenizer_config.update({k: v for k, v in hostile.items() if k in ("tokenizer_class", "processor_class", "auto_map")})
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))

    loaded = AutoConfig.from_pretrained(directory, trust_remote_code=True)
    model = AutoModel.from_pretrained(directory, trust_remote_code=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=True)
    except (ValueError, OSError) as exc:  # refusing the class name is fine, as long as it names it
        assert REPO in str(exc)
    else:
        assert type(tokenizer).__name__.startswith("BertTokenizer")
    assert loaded.model_type == "bert" and type(model).__name__ == "BertModel"
    assert connection_attempts == []
    assert not [n for n in imports_seen if "evil" in n or "attacker" in n]


@pytest.mark.parametrize("backbone", [REPO, "hf-hub:attacker/evil-repo", "resnet50"])
def test_detr_backbone_names_are_never_fetched(tmp_path, connection_attempts, imports_seen, backbone):
    """``use_timm_backbone`` + ``use_pretrained_backbone=True`` makes Transformers ask timm to download the
    named backbone; we build the ResNet ourselves (its weights come from the checkpoint) and refuse other names."""
    from polyformers_detr.configuration_detr import DetrConfig

    config = DetrConfig(use_timm_backbone=True, backbone=backbone, use_pretrained_backbone=True, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_ffn_dim=16, decoder_ffn_dim=16, encoder_attention_heads=2, decoder_attention_heads=2, num_queries=3, num_labels=2)
    config.save_pretrained(tmp_path / "detr")
    if backbone == "resnet50":
        model = AutoModel.from_config(AutoConfig.from_pretrained(tmp_path / "detr"))
        assert type(model).__name__ == "DetrModel"
    else:
        with pytest.raises(ConfigError, match="not supported"):
            AutoModel.from_config(AutoConfig.from_pretrained(tmp_path / "detr"))
    assert connection_attempts == []
    assert not [n for n in imports_seen if n.split(".")[0] in ("timm", "huggingface_hub") or "evil" in n]
