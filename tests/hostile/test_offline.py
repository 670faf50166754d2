"""Offline means offline: with HF_HUB_OFFLINE=1 nothing may try to open a connection.

Every way out of the process through ``socket`` is replaced by a function that records the
attempt and raises, so a test fails both if polyformers connects and if it swallows the failure.
"""

from __future__ import annotations

import socket
import time

import pytest
import torch

import polyformers
from polyformers import AutoModel, AutoTokenizer
from polyformers_bert.configuration_bert import BertConfig
from polyformers_bert.modeling_bert import BertModel
from polyformers_bert.tokenization_bert_fast import BertTokenizerFast

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "the", "a"]


@pytest.fixture
def connection_attempts(monkeypatch):
    """Offline mode, and a list of every connection attempted (each of which raises)."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError(f"test forbids network access, attempted: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def model_dir(tmp_path):
    directory = tmp_path / "tiny-bert"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=8, max_position_embeddings=32)
    BertModel(config).save_pretrained(directory)
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n")
    BertTokenizerFast(vocab_file=str(vocab_file)).save_pretrained(directory)
    return directory


def test_the_guard_catches_a_connection(connection_attempts):
    """Control: the patched socket records an attempt, so the zero counts below mean something."""
    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    assert len(connection_attempts) == 1


def test_local_model_and_tokenizer_load_without_connecting(model_dir, connection_attempts):
    model = AutoModel.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    inputs = tokenizer("hello world", return_tensors="pt")
    hidden = model(**inputs).last_hidden_state

    assert hidden.shape == (1, 4, 16)  # [CLS] hello world [SEP]
    assert connection_attempts == []


def test_feature_extraction_pipeline_runs_without_connecting(model_dir, connection_attempts):
    extractor = polyformers.pipeline("feature-extraction", model=str(model_dir))
    features = extractor("hello world")

    assert torch.tensor(features).shape == (1, 4, 16)
    assert connection_attempts == []


@pytest.mark.parametrize("load", [AutoModel.from_pretrained, AutoTokenizer.from_pretrained, polyformers.AutoConfig.from_pretrained],
                         ids=["AutoModel", "AutoTokenizer", "AutoConfig"])
def test_uncached_repo_fails_fast_without_connecting(tmp_path, connection_attempts, load):
    start = time.monotonic()
    with pytest.raises(OSError) as info:
        load("some-org/not-cached-repo", cache_dir=tmp_path / "empty-cache")
    elapsed = time.monotonic() - start

    assert "some-org/not-cached-repo" in str(info.value)
    assert "offline" in str(info.value).lower() or "HF_HUB_OFFLINE" in str(info.value)
    assert connection_attempts == []
    assert elapsed < 5, f"failing offline took {elapsed:.1f} s; it should not wait for a network"


def test_uncached_repo_in_default_cache_fails_without_connecting(tmp_path, monkeypatch, connection_attempts):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    with pytest.raises(OSError):
        AutoModel.from_pretrained("some-org/not-cached-repo")
    assert connection_attempts == []


def test_cached_repo_model_tokenizer_processor_and_pipeline_without_connecting(tmp_path, monkeypatch, connection_attempts):
    """A repo id in the hub cache (models--org--name/snapshots/<commit>, refs/main): model,
    tokenizer, feature extractor, processor and a pipeline load from it with zero connections."""
    pytest.importorskip("polyformers_wav2vec2")
    import json

    import numpy as np

    from polyformers import AutoFeatureExtractor, AutoModelForCTC, AutoProcessor

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny-asr"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    torch.manual_seed(0)
    config = polyformers.Wav2Vec2Config(
        vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, conv_dim=(8, 8),
        conv_kernel=(5, 3), conv_stride=(4, 2), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
    )
    polyformers.Wav2Vec2ForCTC(config).save_pretrained(snapshot)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6, "C": 7}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = polyformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    extractor = polyformers.Wav2Vec2FeatureExtractor()
    polyformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(snapshot)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # the default cache, read per call

    model = AutoModelForCTC.from_pretrained("org/tiny-asr")
    assert type(AutoTokenizer.from_pretrained("org/tiny-asr")).__name__ == "Wav2Vec2CTCTokenizer"
    assert type(AutoFeatureExtractor.from_pretrained("org/tiny-asr")).__name__ == "Wav2Vec2FeatureExtractor"
    processor = AutoProcessor.from_pretrained("org/tiny-asr")
    inputs = processor(np.zeros(1600, dtype=np.float32), sampling_rate=16000, return_tensors="pt")
    assert model(**inputs).logits.shape[-1] == 8
    transcript = polyformers.pipeline("automatic-speech-recognition", model="org/tiny-asr")(np.zeros(1600, dtype=np.float32))
    assert isinstance(transcript["text"], str)
    assert connection_attempts == []
