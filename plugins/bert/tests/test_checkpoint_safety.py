"""pytorch_model.bin is read with torch's safe unpickler: code hidden in a pickle never runs."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from polyformers.errors import CheckpointError
from polyformers_bert.configuration_bert import BertConfig
from polyformers_bert.modeling_bert import BertModel

TINY = dict(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=16)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/polyformers-pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    BertConfig(**TINY).save_pretrained(tmp_path)
    state = BertModel(BertConfig(**TINY)).state_dict()
    state["evil"] = Exploit()
    torch.save(state, tmp_path / "pytorch_model.bin", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(CheckpointError) as excinfo:
        BertModel.from_pretrained(tmp_path)
    message = str(excinfo.value)
    assert "pytorch_model.bin" in message and "weights_only=False" in message
    assert not os.path.exists("/tmp/polyformers-pwned")


def test_truncated_pickle_names_the_file(tmp_path):
    BertModel(BertConfig(**TINY)).save_pretrained(tmp_path, safe_serialization=False)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="pytorch_model.bin.*truncated or corrupt"):
        BertModel.from_pretrained(tmp_path)


def test_shard_missing_from_index_is_named(tmp_path):
    BertModel(BertConfig(**TINY)).save_pretrained(tmp_path, max_shard_size="5KB")
    shards = sorted(p for p in os.listdir(tmp_path) if p.startswith("model-"))
    os.remove(tmp_path / shards[-1])
    with pytest.raises(CheckpointError, match=f"lists '{shards[-1]}', which is missing"):
        BertModel.from_pretrained(tmp_path)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = BertModel(BertConfig(**TINY))
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    import safetensors.torch

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    torch.nn.init.normal_(model.embeddings.word_embeddings.weight)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
