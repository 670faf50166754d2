"""BERT through the shared cross-framework equivalence kit: PyTorch <-> TensorFlow <-> Flax."""

from __future__ import annotations

import numpy as np

from polyformers.testing.equivalence import CrossFrameworkEquivalenceMixin
from polyformers_bert.configuration_bert import BertConfig

from test_modeling_bert import CHOICES, CLASS_NAMES, SEQ, TINY


class TestBertEquivalence(CrossFrameworkEquivalenceMixin):
    equivalence_classes = CLASS_NAMES

    def get_equivalence_config(self):
        return BertConfig(**TINY, position_embedding_type="relative_key_query", is_decoder=False)

    def get_equivalence_inputs(self, class_name, config):
        rng = np.random.default_rng(0)
        shape = (2, CHOICES, SEQ) if class_name == "BertForMultipleChoice" else (2, SEQ)
        mask = np.ones(shape, dtype=np.int64)
        mask[-1, ..., -2:] = 0
        return {
            "input_ids": rng.integers(1, config.vocab_size, shape).astype(np.int64),
            "token_type_ids": rng.integers(0, 2, shape).astype(np.int64),
            "attention_mask": mask,
        }
