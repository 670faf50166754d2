"""``BertConfig``: the configuration of BERT models, as in Transformers."""

from __future__ import annotations

from typing import Any

from polyformers.configuration_utils import PretrainedConfig

POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")


class BertConfig(PretrainedConfig):
    """Configuration of a BERT model; the defaults give google-bert/bert-base-uncased.

    Args:
        vocab_size: number of token ids.
        hidden_size: width of every layer.
        num_hidden_layers / num_attention_heads / intermediate_size: depth, heads, MLP width.
        hidden_act: activation of the MLP (``"gelu"`` is the exact erf GELU).
        hidden_dropout_prob / attention_probs_dropout_prob: dropout rates.
        max_position_embeddings / type_vocab_size: sizes of the position and segment tables.
        initializer_range: std of the normal initialiser.
        layer_norm_eps: epsilon of every LayerNorm.
        position_embedding_type: ``"absolute"``, ``"relative_key"`` or ``"relative_key_query"``
            (Shaw et al. / Huang et al. relative positions).
        use_cache: decoders return key/value caches.
        classifier_dropout: dropout of classification heads (``None``: hidden_dropout_prob).
    """

    model_type = "bert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int | None = 0,
        position_embedding_type: str = "absolute",
        use_cache: bool = True,
        classifier_dropout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type must be one of {', '.join(POSITION_EMBEDDING_TYPES)}, got {position_embedding_type!r}."
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.position_embedding_type = position_embedding_type
        self.use_cache = use_cache
        self.classifier_dropout = classifier_dropout
