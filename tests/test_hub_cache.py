"""Loading by hub repo id from a cache laid out as huggingface_hub lays it out; never the network."""

from __future__ import annotations

import shutil

import pytest
import torch

from polyformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLD_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "the", "a"]


def make_checkpoint(directory, seed: int) -> None:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=32)
    BertForMaskedLM(config).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")


@pytest.fixture
def hub_cache(tmp_path):
    """cache/models--org--tiny-bert/{refs/main, snapshots/<commit>/...}: two revisions."""
    cache = tmp_path / "cache"
    repo = cache / "models--org--tiny-bert"
    for commit, seed in ((COMMIT, 0), (OLD_COMMIT, 1)):
        make_checkpoint(repo / "snapshots" / commit, seed)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "refs" / "v1").write_text(OLD_COMMIT)
    return cache


def test_repo_id_loads_from_cache_offline(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForMaskedLM.from_pretrained("org/tiny-bert", cache_dir=hub_cache)
    expected = BertForMaskedLM.from_pretrained(hub_cache / "models--org--tiny-bert" / "snapshots" / COMMIT)
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, expected.bert.embeddings.word_embeddings.weight)
    tokenizer = AutoTokenizer.from_pretrained("org/tiny-bert", cache_dir=hub_cache)
    assert tokenizer("hello worlds")["input_ids"] == [2, 5, 6, 7, 3]
    assert isinstance(AutoConfig.from_pretrained("org/tiny-bert", cache_dir=hub_cache), BertConfig)


def test_local_files_only_and_revisions(hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    main = AutoModel.from_pretrained("org/tiny-bert", cache_dir=hub_cache, local_files_only=True)
    by_tag = AutoModel.from_pretrained("org/tiny-bert", cache_dir=hub_cache, local_files_only=True, revision="v1")
    by_hash = AutoModel.from_pretrained("org/tiny-bert", cache_dir=hub_cache, local_files_only=True, revision=OLD_COMMIT)
    weight = lambda m: m.embeddings.word_embeddings.weight  # noqa: E731
    assert torch.equal(weight(by_tag), weight(by_hash))
    assert not torch.equal(weight(main), weight(by_tag))


def test_uncached_repo_offline_says_what_to_do(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="offline .* not in the local cache"):
        AutoModel.from_pretrained("org/not-cached", cache_dir=hub_cache)


def test_missing_weights_file_in_cache_is_reported(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = hub_cache / "models--org--tiny-bert" / "snapshots" / COMMIT
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(OSError, match="no PyTorch weights"):
        AutoModel.from_pretrained("org/tiny-bert", cache_dir=hub_cache)


def test_directory_without_weights_names_other_formats(tmp_path):
    make_checkpoint(tmp_path, 0)
    shutil.move(tmp_path / "model.safetensors", tmp_path / "tf_model.h5")
    with pytest.raises(OSError, match="has tf_model.h5: pass from_tf=True"):
        AutoModel.from_pretrained(tmp_path)
