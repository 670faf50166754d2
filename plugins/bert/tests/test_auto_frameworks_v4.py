"""TFAutoModel… and FlaxAutoModel… on directories written by Transformers 4.46.3 and by us, in every
weight format, agree with our PyTorch model on the same weights (the bert-oracle-v4 env)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Transformers' TF models need Keras 2

from test_modeling_bert import TINY, transformers_major  # noqa: E402

if transformers_major() != 4:
    pytest.skip("needs Transformers 4.x (the bert-oracle-v4 tox env)", allow_module_level=True)
pytest.importorskip("tensorflow")
pytest.importorskip("flax")

import torch  # noqa: E402

IDS = np.array([[2, 11, 17, 40, 3, 0], [2, 9, 13, 3, 0, 0]])
MASK = (IDS != 0).astype(np.int64)


def pt_logits(directory, class_name: str) -> np.ndarray:
    import polyformers

    model = getattr(polyformers, class_name).from_pretrained(directory, from_tf=(directory / "tf_model.h5").exists(), from_flax=(directory / "flax_model.msgpack").exists())
    with torch.no_grad():
        return model(torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK)).logits.numpy()


def writers(transformers, tmp_path):
    """(name, directory) for each writer and format: Transformers' TF, Flax and PyTorch, and ours."""
    import polyformers

    config = transformers.BertConfig(**TINY, num_labels=3)
    torch.manual_seed(0)
    cases = []
    for framework in ("TF", "Flax", ""):
        for task in ("ForSequenceClassification", "ForMaskedLM"):
            theirs = getattr(transformers, f"{framework}Bert{task}")(config)
            if framework == "TF":
                theirs(theirs.dummy_inputs)
            for safe in (False, True):
                directory = tmp_path / f"theirs-{framework or 'PT'}-{task}-{'st' if safe else 'native'}"
                theirs.save_pretrained(directory, safe_serialization=safe)
                cases.append((f"Bert{task}", directory))
    for task in ("ForSequenceClassification", "ForMaskedLM"):
        ours = getattr(polyformers, f"Bert{task}")(polyformers.BertConfig(**TINY, num_labels=3))
        for safe in (False, True):
            directory = tmp_path / f"ours-PT-{task}-{'st' if safe else 'native'}"
            ours.save_pretrained(directory, safe_serialization=safe)
            cases.append((f"Bert{task}", directory))
    return cases


def test_tf_and_flax_auto_classes_on_every_writer_and_format(tmp_path):
    import transformers

    from polyformers import FlaxAutoModelForMaskedLM, FlaxAutoModelForSequenceClassification, TFAutoModelForMaskedLM, TFAutoModelForSequenceClassification

    autos = {
        "BertForSequenceClassification": (TFAutoModelForSequenceClassification, FlaxAutoModelForSequenceClassification),
        "BertForMaskedLM": (TFAutoModelForMaskedLM, FlaxAutoModelForMaskedLM),
    }
    checked = 0
    for class_name, directory in writers(transformers, tmp_path):
        expected = pt_logits(directory, class_name)
        tf_auto, flax_auto = autos[class_name]
        from_pt = not ((directory / "tf_model.h5").exists() or (directory / "flax_model.msgpack").exists())
        # A native tf_model.h5 is for TensorFlow and PyTorch, a flax_model.msgpack for Flax and
        # PyTorch (as in Transformers); `polyformers convert` bridges the other two. safetensors
        # files written by any framework load everywhere.
        if not (directory / "flax_model.msgpack").exists():
            tf_logits = tf_auto.from_pretrained(directory, from_pt=from_pt)({"input_ids": IDS, "attention_mask": MASK}).logits.numpy()
            assert np.abs(tf_logits - expected).max() < 1e-5, directory.name
            checked += 1
        if not (directory / "tf_model.h5").exists():
            flax_logits = np.asarray(flax_auto.from_pretrained(directory, from_pt=from_pt)(IDS, attention_mask=MASK).logits)
            assert np.abs(flax_logits - expected).max() < 1e-5, directory.name
            checked += 1
    assert checked == 28
