"""`polyformers convert`: any format from any other, and the converted model computes the same."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("flax")
import torch  # noqa: E402

from polyformers import BertConfig, BertForMaskedLM, FlaxBertForMaskedLM, TFBertForMaskedLM  # noqa: E402
from polyformers.cli import main  # noqa: E402

TINY = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20, max_position_embeddings=32)
IDS = np.array([[2, 5, 7, 9, 3], [2, 6, 6, 3, 0]])


def logits(directory) -> np.ndarray:
    files = set(os.listdir(directory))
    if "tf_model.h5" in files:
        return TFBertForMaskedLM.from_pretrained(directory)(IDS).logits.numpy()
    if "flax_model.msgpack" in files:
        return np.asarray(FlaxBertForMaskedLM.from_pretrained(directory)(IDS).logits)
    with torch.no_grad():
        return BertForMaskedLM.from_pretrained(directory)(torch.from_numpy(IDS)).logits.numpy()


@pytest.fixture(scope="module")
def pt_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pt")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(**TINY)).save_pretrained(directory)
    (directory / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    return directory


def test_round_trip_through_every_framework(pt_dir, tmp_path):
    expected = logits(pt_dir)
    steps = [("tf", "tf"), ("flax", "flax"), ("tf2", "tf"), ("pt", "pt")]  # pt -> tf -> flax -> tf -> pt
    source = pt_dir
    for name, to in steps:
        assert main(["convert", str(source), str(tmp_path / name), "--to", to]) == 0
        assert np.abs(logits(tmp_path / name) - expected).max() < 1e-5, name
        assert (tmp_path / name / "vocab.txt").is_file()
        source = tmp_path / name
    assert sorted(os.listdir(tmp_path / "pt")) == ["config.json", "model.safetensors", "vocab.txt"]
    assert (tmp_path / "tf" / "tf_model.h5").is_file() and (tmp_path / "flax" / "flax_model.msgpack").is_file()


def test_safetensors_flag_and_command_line(pt_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "polyformers.cli", "convert", str(pt_dir), str(tmp_path / "st"), "--to", "flax", "--safetensors"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "FlaxBertForMaskedLM" in out.stdout
    assert (tmp_path / "st" / "model.safetensors").is_file()
    assert np.abs(logits(tmp_path / "st") - logits(pt_dir)).max() < 1e-5


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out"), "--to", "tf"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_pytorch_reads_a_sharded_tf_checkpoint(pt_dir, tmp_path):
    TFBertForMaskedLM.from_pretrained(pt_dir).save_pretrained(tmp_path / "tf", max_shard_size="10KB")
    assert (tmp_path / "tf" / "tf_model.h5.index.json").is_file()
    back = BertForMaskedLM.from_pretrained(tmp_path / "tf", from_tf=True)
    with torch.no_grad():
        assert np.abs(back(torch.from_numpy(IDS)).logits.numpy() - logits(pt_dir)).max() < 1e-6
