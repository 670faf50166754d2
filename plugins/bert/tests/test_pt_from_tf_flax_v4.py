"""Our PyTorch BERT reads tf_model.h5 and flax_model.msgpack written by Transformers 4.46.3.

Oracle: Transformers 4.46.3's own TF and Flax models on the same files (the bert-oracle-v4 env).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Transformers' TF models need Keras 2

from test_modeling_bert import TINY, transformers_major  # noqa: E402

if transformers_major() != 4:
    pytest.skip("needs Transformers 4.x (the bert-oracle-v4 tox env)", allow_module_level=True)

import torch  # noqa: E402

CLASSES = ("BertModel", "BertForMaskedLM", "BertForSequenceClassification", "BertForQuestionAnswering", "BertForPreTraining")


def _ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 99, (2, 7))
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask


def _main(out):
    for key in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if key in out:
            return np.asarray(out[key])
    return np.asarray(out[0])


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("source", ["tf", "flax"])
@pytest.mark.parametrize("safe", [False, True])
def test_pt_loads_transformers_tf_and_flax_files(tmp_path, class_name, source, safe):
    pytest.importorskip("tensorflow" if source == "tf" else "flax")
    import transformers

    import polyformers

    theirs_class = getattr(transformers, ("TF" if source == "tf" else "Flax") + class_name)
    theirs = theirs_class(transformers.BertConfig(**TINY))
    ids, mask = _ids()
    if source == "tf":
        theirs(theirs.dummy_inputs)
    theirs.save_pretrained(tmp_path, safe_serialization=safe)
    expected = _main(theirs(ids, attention_mask=mask))

    ours, info = getattr(polyformers, class_name).from_pretrained(tmp_path, output_loading_info=True, **{f"from_{source}": True})
    assert info["missing_keys"] == [] and info["mismatched_keys"] == [], info
    with torch.no_grad():
        got = _main(ours(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)))
    assert np.abs(got - expected).max() < 1e-5
    if safe:  # a TF/Flax-written model.safetensors is recognised by its metadata, no flag needed
        again = getattr(polyformers, class_name).from_pretrained(tmp_path)
        with torch.no_grad():
            assert np.abs(_main(again(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))) - expected).max() < 1e-5
