"""BERT in JAX/Flax (linen): the blocks first (embeddings, attention, MLP, layer), then the model and its heads.

Parameter names and nesting are the checkpoint format shared with Transformers' Flax BERT (4.x),
so ``flax_model.msgpack`` files interchange; they are also PyTorch's names after
:func:`polyformers.conversion.flax_key_to_pt`. ``LayerNorm`` keeps its checkpoint spelling,
although it is not snake_case.

Numerics follow our PyTorch BERT, not Flax's defaults: ``"gelu"`` is the exact erf GELU and
LayerNorm uses the config's epsilon and two-pass variance (Flax's default fast variance loses
precision on rows with a large mean). Beyond Transformers' Flax BERT, this one has relative
position embeddings, fractional head masks and pruned heads, like the PyTorch side.

Shapes: B batch, T query length, S key length (cache included), H heads, D head size, C hidden.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.core.frozen_dict import unfreeze
from jax import lax

from polyformers.activations_flax import ACT2FN
from polyformers.modeling_flax_utils import FlaxPreTrainedModel, register_model_output
from polyformers.modeling_outputs import (
    BaseModelOutputWithPastAndCrossAttentions,
    BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    ModelOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from .configuration_bert import BertConfig

RELATIVE_POSITIONS = ("relative_key", "relative_key_query")


def _normal(config: BertConfig) -> Any:
    return jax.nn.initializers.normal(stddev=config.initializer_range)


def _layer_norm(config: BertConfig, dtype: Any) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=config.layer_norm_eps, use_fast_variance=False, dtype=dtype)


class FlaxBertEmbeddings(nn.Module):
    """Word + segment (+ absolute position) embeddings, then LayerNorm and dropout."""

    config: BertConfig
    dtype: Any = jnp.float32  # the computation dtype

    def setup(self) -> None:
        config = self.config
        self.word_embeddings = nn.Embed(config.vocab_size, config.hidden_size, embedding_init=_normal(config), dtype=self.dtype)
        self.position_embeddings = nn.Embed(config.max_position_embeddings, config.hidden_size, embedding_init=_normal(config), dtype=self.dtype)
        self.token_type_embeddings = nn.Embed(config.type_vocab_size, config.hidden_size, embedding_init=_normal(config), dtype=self.dtype)
        self.LayerNorm = _layer_norm(config, self.dtype)  # checkpoint name
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)

    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, position_ids: jax.Array, deterministic: bool = True) -> jax.Array:
        embeddings = self.word_embeddings(input_ids.astype("i4")) + self.token_type_embeddings(token_type_ids.astype("i4"))  # (B, T, C)
        # Models with relative positions still hold the absolute table (it is in their checkpoints):
        # looking it up creates the parameter; XLA drops the unused lookup.
        position_embeddings = self.position_embeddings(position_ids.astype("i4"))
        if self.config.position_embedding_type == "absolute":
            embeddings = embeddings + position_embeddings
        return self.dropout(self.LayerNorm(embeddings), deterministic=deterministic)


class FlaxBertSelfAttention(nn.Module):
    """Multi-head attention; self-attention, or cross-attention when ``key_value_states`` are given.

    Decoders (``causal``) mask future positions and can decode step by step with a cache: the
    ``"cache"`` collection holds the keys and values so far (``cached_key``, ``cached_value``,
    ``cache_index``, named as in Transformers so that caches interchange).
    """

    config: BertConfig
    causal: bool = False
    num_heads: int = 0  # 0: config.num_attention_heads; fewer after pruning
    position_embedding_type: str | None = None  # None: config.position_embedding_type
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention heads "
                f"({config.num_attention_heads}); change one of them in the config."
            )
        self.heads = self.num_heads or config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Dense(self.heads * self.head_dim, kernel_init=_normal(config), dtype=self.dtype)
        self.key = nn.Dense(self.heads * self.head_dim, kernel_init=_normal(config), dtype=self.dtype)
        self.value = nn.Dense(self.heads * self.head_dim, kernel_init=_normal(config), dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.attention_probs_dropout_prob)
        kind = self.position_embedding_type or config.position_embedding_type
        self.relative = kind in RELATIVE_POSITIONS
        self.relative_to_keys_too = kind == "relative_key_query"
        if self.relative:
            self.distance_embedding = nn.Embed(2 * config.max_position_embeddings - 1, self.head_dim, embedding_init=_normal(config), dtype=self.dtype)

    def _split_heads(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[:2] + (self.heads, self.head_dim))  # (B, T, H, D)

    @nn.compact
    def _concatenate_to_cache(self, key: jax.Array, value: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Write this step's keys/values at the cache index; returns (first query position, keys, values)."""
        initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
        if not initialized:  # init_cache=True only creates the (max_length-long) cache
            return jnp.array(0, dtype=jnp.int32), key, value
        start, new_tokens = cache_index.value, key.shape[1]
        key = lax.dynamic_update_slice(cached_key.value, key, (0, start, 0, 0))  # (B, S_max, H, D)
        value = lax.dynamic_update_slice(cached_value.value, value, (0, start, 0, 0))
        cached_key.value, cached_value.value = key, value
        cache_index.value = start + new_tokens
        return start, key, value

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None,
        layer_head_mask: jax.Array | None,
        key_value_states: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> tuple[jax.Array, ...]:
        B, T, _ = hidden_states.shape
        source = hidden_states if key_value_states is None else key_value_states
        query = self._split_heads(self.query(hidden_states))  # (B, T, H, D)
        key = self._split_heads(self.key(source))  # (B, S, H, D)
        value = self._split_heads(self.value(source))

        mask = None if attention_mask is None else attention_mask[:, None, None, :].astype(bool)  # (B, 1, 1, S)
        query_start: Any = 0  # position of the first query token (after cached ones)
        if self.causal and (init_cache or self.has_variable("cache", "cached_key")):
            query_start, key, value = self._concatenate_to_cache(key, value)
        query_positions = query_start + jnp.arange(T)  # (T,)
        key_positions = jnp.arange(key.shape[1])  # (S,)
        if self.causal:
            causal = (key_positions[None, :] <= query_positions[:, None])[None, None]  # (1, 1, T, S)
            mask = causal if mask is None else mask & causal

        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key)  # (B, H, T, S)
        if self.relative:
            distance = query_positions[:, None] - key_positions[None, :]  # (T, S)
            positional = self.distance_embedding(distance + self.config.max_position_embeddings - 1)  # (T, S, D)
            scores = scores + jnp.einsum("bqhd,qkd->bhqk", query, positional)
            if self.relative_to_keys_too:
                scores = scores + jnp.einsum("bkhd,qkd->bhqk", key, positional)
        scores = scores / math.sqrt(self.head_dim)
        if mask is not None:  # additive, as in PyTorch: 0 keeps, dtype-min drops
            scores = scores + jnp.where(mask, 0.0, jnp.finfo(self.dtype).min).astype(self.dtype)
        probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(self.dtype)
        probs = self.dropout(probs, deterministic=deterministic)
        if layer_head_mask is not None:
            probs = probs * layer_head_mask.astype(self.dtype)[None, :, None, None]
        context = jnp.einsum("bhqk,bkhd->bqhd", probs, value).reshape(B, T, self.heads * self.head_dim)  # (B, T, C)
        return (context, probs) if output_attentions else (context,)


class FlaxBertSelfOutput(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = nn.Dense(self.config.hidden_size, kernel_init=_normal(self.config), dtype=self.dtype)
        self.LayerNorm = _layer_norm(self.config, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)

    def __call__(self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True) -> jax.Array:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), deterministic=deterministic) + input_tensor)


class FlaxBertAttention(nn.Module):
    config: BertConfig
    causal: bool = False
    num_heads: int = 0
    position_embedding_type: str | None = None
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.self = FlaxBertSelfAttention(self.config, self.causal, self.num_heads, self.position_embedding_type, dtype=self.dtype)
        self.output = FlaxBertSelfOutput(self.config, dtype=self.dtype)

    def __call__(self, hidden_states, attention_mask, layer_head_mask, key_value_states=None, init_cache=False, deterministic=True, output_attentions=False):
        self_outputs = self.self(hidden_states, attention_mask, layer_head_mask, key_value_states, init_cache, deterministic, output_attentions)
        attention_output = self.output(self_outputs[0], hidden_states, deterministic=deterministic)
        return (attention_output,) + self_outputs[1:]


class FlaxBertIntermediate(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = nn.Dense(self.config.intermediate_size, kernel_init=_normal(self.config), dtype=self.dtype)
        self.activation = ACT2FN[self.config.hidden_act]

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.activation(self.dense(hidden_states))


class FlaxBertOutput(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = nn.Dense(self.config.hidden_size, kernel_init=_normal(self.config), dtype=self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)
        self.LayerNorm = _layer_norm(self.config, self.dtype)

    def __call__(self, hidden_states: jax.Array, attention_output: jax.Array, deterministic: bool = True) -> jax.Array:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), deterministic=deterministic) + attention_output)


class FlaxBertLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), then the MLP."""

    config: BertConfig
    layer_index: int = 0  # which heads config.pruned_heads removed from this layer
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        heads = config.num_attention_heads - len(config.pruned_heads.get(self.layer_index, ()))
        self.attention = FlaxBertAttention(config, causal=config.is_decoder, num_heads=heads, dtype=self.dtype)
        if config.add_cross_attention:
            if not config.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True in the config: only decoders attend to an encoder.")
            self.crossattention = FlaxBertAttention(config, causal=False, position_embedding_type="absolute", dtype=self.dtype)
        self.intermediate = FlaxBertIntermediate(config, dtype=self.dtype)
        self.output = FlaxBertOutput(config, dtype=self.dtype)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None,
        layer_head_mask: jax.Array | None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> tuple[jax.Array, ...]:
        self_outputs = self.attention(
            hidden_states, attention_mask, layer_head_mask, init_cache=init_cache, deterministic=deterministic, output_attentions=output_attentions
        )
        attention_output = self_outputs[0]
        outputs = self_outputs[1:]
        if self.config.is_decoder and encoder_hidden_states is not None:
            if not self.config.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were passed, but this model has no cross-attention layers: "
                    "build the model with add_cross_attention=True in its config."
                )
            cross_outputs = self.crossattention(
                attention_output,
                encoder_attention_mask,
                layer_head_mask,
                key_value_states=encoder_hidden_states,
                deterministic=deterministic,
                output_attentions=output_attentions,
            )
            attention_output = cross_outputs[0]
            outputs = outputs + cross_outputs[1:]
        layer_output = self.output(self.intermediate(attention_output), attention_output, deterministic=deterministic)
        return (layer_output,) + outputs  # (hidden, [self attentions, [cross attentions]])


class FlaxBertLayerCollection(nn.Module):
    """The layers, named "0", "1", ... under "layer" as in the checkpoints."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        layer_class = FlaxBertLayer
        if self.gradient_checkpointing:
            # init_cache, deterministic and output_attentions select code paths: static for remat
            # (argument numbers count self as 0).
            layer_class = nn.remat(FlaxBertLayer, static_argnums=(6, 7, 8))
        self.layers = [layer_class(self.config, layer_index=i, name=str(i), dtype=self.dtype) for i in range(self.config.num_hidden_layers)]

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None,
        head_mask: jax.Array | None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        if head_mask is not None and head_mask.shape[0] != len(self.layers):
            raise ValueError(f"head_mask has {head_mask.shape[0]} layers, but the model has {len(self.layers)}.")
        with_cross = output_attentions and self.config.is_decoder and encoder_hidden_states is not None
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        all_cross_attentions = () if with_cross else None
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            layer_outputs = layer(
                hidden_states,
                attention_mask,
                head_mask[i] if head_mask is not None else None,
                encoder_hidden_states,
                encoder_attention_mask,
                init_cache,
                deterministic,
                output_attentions,
            )
            hidden_states = layer_outputs[0]
            if output_attentions:
                all_attentions += (layer_outputs[1],)
                if with_cross:
                    all_cross_attentions += (layer_outputs[2],)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states, attentions=all_attentions, cross_attentions=all_cross_attentions
        )


class FlaxBertEncoder(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.layer = FlaxBertLayerCollection(self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, hidden_states, attention_mask, head_mask, *args, **kwargs) -> BaseModelOutputWithPastAndCrossAttentions:
        return self.layer(hidden_states, attention_mask, head_mask, *args, **kwargs)


class FlaxBertPooler(nn.Module):
    """tanh(dense(first token)): the [CLS] summary that classification heads read."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = nn.Dense(self.config.hidden_size, kernel_init=_normal(self.config), dtype=self.dtype)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return jnp.tanh(self.dense(hidden_states[:, 0]))


class FlaxBertPredictionHeadTransform(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = nn.Dense(self.config.hidden_size, kernel_init=_normal(self.config), dtype=self.dtype)
        self.activation = ACT2FN[self.config.hidden_act]
        self.LayerNorm = _layer_norm(self.config, self.dtype)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.LayerNorm(self.activation(self.dense(hidden_states)))


class FlaxBertLMPredictionHead(nn.Module):
    """Transform, then project to the vocabulary with the tied word embeddings (or an own decoder) and a bias.

    Tied, the decoder has no kernel of its own: the caller passes the word embeddings.
    """

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.transform = FlaxBertPredictionHeadTransform(self.config, dtype=self.dtype)
        self.decoder = nn.Dense(self.config.vocab_size, use_bias=False, kernel_init=_normal(self.config), dtype=self.dtype)
        self.bias = self.param("bias", jax.nn.initializers.zeros, (self.config.vocab_size,))

    def __call__(self, hidden_states: jax.Array, shared_embedding: jax.Array | None = None) -> jax.Array:
        hidden_states = self.transform(hidden_states)
        if shared_embedding is not None:
            logits = hidden_states @ shared_embedding.T.astype(self.dtype)  # (B, T, V)
        else:
            logits = self.decoder(hidden_states)
        return logits + self.bias.astype(self.dtype)


class FlaxBertOnlyMLMHead(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBertLMPredictionHead(self.config, dtype=self.dtype)

    def __call__(self, hidden_states: jax.Array, shared_embedding: jax.Array | None = None) -> jax.Array:
        return self.predictions(hidden_states, shared_embedding=shared_embedding)


class FlaxBertOnlyNSPHead(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.seq_relationship = nn.Dense(2, kernel_init=_normal(self.config), dtype=self.dtype)

    def __call__(self, pooled_output: jax.Array) -> jax.Array:
        return self.seq_relationship(pooled_output)


class FlaxBertPreTrainingHeads(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBertLMPredictionHead(self.config, dtype=self.dtype)
        self.seq_relationship = nn.Dense(2, kernel_init=_normal(self.config), dtype=self.dtype)

    def __call__(self, hidden_states, pooled_output, shared_embedding=None):
        return self.predictions(hidden_states, shared_embedding=shared_embedding), self.seq_relationship(pooled_output)


# --- modules: the backbone and its heads ---------------------------------------------------------


def _finish(output: ModelOutput, return_dict: bool) -> ModelOutput | tuple:
    return output if return_dict else output.to_tuple()


class FlaxBertModule(nn.Module):
    """The bare encoder (or, with ``is_decoder``, decoder): hidden states and the pooled [CLS]."""

    config: BertConfig
    dtype: Any = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.embeddings = FlaxBertEmbeddings(self.config, dtype=self.dtype)
        self.encoder = FlaxBertEncoder(self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)
        if self.add_pooling_layer:
            self.pooler = FlaxBertPooler(self.config, dtype=self.dtype)

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        position_ids: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions | tuple:
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids, deterministic=deterministic)
        outputs = self.encoder(
            hidden_states, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask, init_cache, deterministic, output_attentions, output_hidden_states
        )
        sequence_output = outputs.last_hidden_state
        output = BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=self.pooler(sequence_output) if self.add_pooling_layer else None,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return _finish(output, return_dict)

    def word_embedding_matrix(self) -> jax.Array:
        """The (V, C) word embedding table, for heads that decode with it (tied weights)."""
        return self.embeddings.variables["params"]["word_embeddings"]["embedding"]


@register_model_output
@dataclass(repr=False)
class FlaxBertForPreTrainingOutput(ModelOutput):
    loss: Any = None
    prediction_logits: Any = None
    seq_relationship_logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


class _HeadModule(nn.Module):
    """A task module: the backbone (``self.bert``), then :meth:`head` on its outputs.

    Subclasses build ``self.bert`` (with :meth:`_backbone`) and their head in ``setup``, and
    implement ``head(outputs, deterministic)``, returning the task's output.
    """

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def _backbone(self, add_pooling_layer: bool = True) -> FlaxBertModule:
        return FlaxBertModule(self.config, dtype=self.dtype, add_pooling_layer=add_pooling_layer, gradient_checkpointing=self.gradient_checkpointing)

    def _shared_embedding(self) -> jax.Array | None:
        return self.bert.word_embedding_matrix() if self.config.tie_word_embeddings else None

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        position_ids: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ) -> ModelOutput | tuple:
        outputs = self.bert(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, encoder_hidden_states, encoder_attention_mask,
            init_cache, deterministic, output_attentions, output_hidden_states,
        )  # fmt: skip
        return _finish(self.head(outputs, deterministic), return_dict)

    def head(self, outputs: BaseModelOutputWithPoolingAndCrossAttentions, deterministic: bool) -> ModelOutput:
        raise NotImplementedError


class FlaxBertForPreTrainingModule(_HeadModule):
    def setup(self) -> None:
        self.bert = self._backbone()
        self.cls = FlaxBertPreTrainingHeads(self.config, dtype=self.dtype)

    def head(self, outputs, deterministic):
        prediction_scores, seq_relationship_score = self.cls(outputs.last_hidden_state, outputs.pooler_output, shared_embedding=self._shared_embedding())
        return FlaxBertForPreTrainingOutput(
            prediction_logits=prediction_scores, seq_relationship_logits=seq_relationship_score, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class FlaxBertForCausalLMModule(_HeadModule):
    def setup(self) -> None:
        self.bert = self._backbone(add_pooling_layer=False)
        self.cls = FlaxBertOnlyMLMHead(self.config, dtype=self.dtype)

    def head(self, outputs, deterministic):
        logits = self.cls(outputs.last_hidden_state, shared_embedding=self._shared_embedding())  # (B, T, V)
        return CausalLMOutputWithCrossAttentions(
            logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions, cross_attentions=outputs.cross_attentions
        )


class FlaxBertForMaskedLMModule(_HeadModule):
    def setup(self) -> None:
        self.bert = self._backbone(add_pooling_layer=False)
        self.cls = FlaxBertOnlyMLMHead(self.config, dtype=self.dtype)

    def head(self, outputs, deterministic):
        logits = self.cls(outputs.last_hidden_state, shared_embedding=self._shared_embedding())  # (B, T, V)
        return MaskedLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForNextSentencePredictionModule(_HeadModule):
    def setup(self) -> None:
        self.bert = self._backbone()
        self.cls = FlaxBertOnlyNSPHead(self.config, dtype=self.dtype)

    def head(self, outputs, deterministic):
        logits = self.cls(outputs.pooler_output)  # (B, 2)
        return NextSentencePredictorOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


def _classifier_dropout(config: BertConfig) -> nn.Dropout:
    return nn.Dropout(rate=config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob)


class FlaxBertForSequenceClassificationModule(_HeadModule):
    """Pooled [CLS] -> dropout -> linear."""

    def setup(self) -> None:
        self.bert = self._backbone()
        self.dropout = _classifier_dropout(self.config)
        self.classifier = nn.Dense(self.config.num_labels, kernel_init=_normal(self.config), dtype=self.dtype)

    def head(self, outputs, deterministic):
        logits = self.classifier(self.dropout(outputs.pooler_output, deterministic=deterministic))  # (B, num_labels)
        return SequenceClassifierOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForMultipleChoiceModule(_HeadModule):
    """Scores each of N choices: inputs are (B, N, T), logits (B, N)."""

    def setup(self) -> None:
        self.bert = self._backbone()
        self.dropout = _classifier_dropout(self.config)
        self.classifier = nn.Dense(1, kernel_init=_normal(self.config), dtype=self.dtype)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, *args, **kwargs):
        def flat(x: jax.Array | None) -> jax.Array | None:  # (B, N, T) -> (B*N, T)
            return x.reshape(-1, x.shape[-1]) if x is not None else None

        output = super().__call__(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids), *args, **kwargs)
        num_choices = input_ids.shape[1]
        if isinstance(output, tuple):
            return (output[0].reshape(-1, num_choices),) + output[1:]
        return dataclasses.replace(output, logits=output.logits.reshape(-1, num_choices))  # (B, N)

    def head(self, outputs, deterministic):
        logits = self.classifier(self.dropout(outputs.pooler_output, deterministic=deterministic))  # (B*N, 1)
        return MultipleChoiceModelOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForTokenClassificationModule(_HeadModule):
    def setup(self) -> None:
        self.bert = self._backbone(add_pooling_layer=False)
        self.dropout = _classifier_dropout(self.config)
        self.classifier = nn.Dense(self.config.num_labels, kernel_init=_normal(self.config), dtype=self.dtype)

    def head(self, outputs, deterministic):
        logits = self.classifier(self.dropout(outputs.last_hidden_state, deterministic=deterministic))  # (B, T, num_labels)
        return TokenClassifierOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class FlaxBertForQuestionAnsweringModule(_HeadModule):
    """Start and end logits over tokens for extractive QA."""

    def setup(self) -> None:
        self.bert = self._backbone(add_pooling_layer=False)
        self.qa_outputs = nn.Dense(self.config.num_labels, kernel_init=_normal(self.config), dtype=self.dtype)

    def head(self, outputs, deterministic):
        logits = self.qa_outputs(outputs.last_hidden_state)  # (B, T, 2)
        return QuestionAnsweringModelOutput(start_logits=logits[..., 0], end_logits=logits[..., 1], hidden_states=outputs.hidden_states, attentions=outputs.attentions)


# --- models: parameters, compiled forward, checkpoints -------------------------------------------


def _find_in_cache(cache: Any, name: str) -> Any:
    """The first ``name`` leaf of a (nested) cache: every layer holds the same index and length."""
    if isinstance(cache, dict) or hasattr(cache, "items"):
        if name in cache:
            return cache[name]
        for value in cache.values():
            found = _find_in_cache(value, name)
            if found is not None:
                return found
    return None


class FlaxBertPreTrainedModel(FlaxPreTrainedModel):
    """Inputs, defaults and checks shared by every Flax BERT model; ``module_class`` is the task's module."""

    config_class = BertConfig
    base_model_prefix = "bert"
    # PyTorch checkpoints hold the MLM decoder's bias (and, tied, its weight) under a second
    # name that Flax does not have; old ones also hold the position_ids buffer.
    _keys_to_ignore_on_load_unexpected = [r"position_ids$", r"token_type_ids$", r"predictions\.decoder\.(bias|weight)$"]

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        input_ids = jnp.zeros(input_shape, dtype="i4")
        inputs = {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids)}
        if self.config.add_cross_attention:  # cross-attention parameters exist only once it runs
            inputs["encoder_hidden_states"] = jnp.zeros(input_shape + (self.config.hidden_size,), dtype=self.dtype)
            inputs["encoder_attention_mask"] = jnp.ones_like(input_ids)
        return inputs

    def init_cache(self, batch_size: int, max_length: int) -> dict[str, Any]:
        """An empty key/value cache for decoding up to ``max_length`` tokens (decoders only).

        Pass it as ``past_key_values``; each call returns the updated one in
        ``outputs.past_key_values``. Positions and the attention mask default to the cached
        length, so a loop feeds only the new tokens.
        """
        if not self.config.is_decoder:
            raise ValueError(f"init_cache is for decoders: build {type(self).__name__} with is_decoder=True in its config.")
        if self.config.position_embedding_type == "absolute" and max_length > self.config.max_position_embeddings:
            raise ValueError(f"max_length={max_length} exceeds max_position_embeddings={self.config.max_position_embeddings}.")
        input_ids = jnp.ones((batch_size, max_length), dtype="i4")
        shapes = jax.eval_shape(lambda: self.module.init(jax.random.PRNGKey(0), input_ids, init_cache=True))["cache"]
        # An empty cache is zeros and index 0; building it from shapes skips initialising parameters.
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), unfreeze(shapes))

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
        head_mask: Any = None,
        encoder_hidden_states: Any = None,
        encoder_attention_mask: Any = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
    ) -> ModelOutput | tuple:
        """Run the model, compiled with ``jax.jit`` (one compilation per input shape and flag set).

        ``train=True`` enables dropout and needs ``dropout_rng``; ``params`` replaces the model's
        own (e.g. inside a training step). ``past_key_values`` (from :meth:`init_cache`) decodes
        step by step; the updated cache comes back as ``outputs.past_key_values``.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.use_return_dict

        input_ids = jnp.asarray(input_ids, dtype="i4")
        seq_length = input_ids.shape[-1]
        if past_key_values is not None:
            if not config.is_decoder:
                raise ValueError("past_key_values is for decoders: build the model with is_decoder=True in its config.")
            start, cached_key = _find_in_cache(past_key_values, "cache_index"), _find_in_cache(past_key_values, "cached_key")
            if start is None or cached_key is None:
                raise ValueError("past_key_values must be the cache from model.init_cache(batch_size, max_length) or a previous call's outputs.past_key_values.")
            max_length = cached_key.shape[1]
            if attention_mask is None:
                attention_mask = jnp.ones(input_ids.shape[:-1] + (max_length,), dtype="i4")
            if position_ids is None:
                position_ids = jnp.broadcast_to(start + jnp.arange(seq_length), input_ids.shape)
        elif position_ids is None and config.position_embedding_type == "absolute" and seq_length > config.max_position_embeddings:
            raise ValueError(
                f"The sequence has {seq_length} tokens, but this model takes at most max_position_embeddings="
                f"{config.max_position_embeddings}; truncate the input (e.g. tokenizer(..., truncation=True))."
            )

        if head_mask is not None:
            head_mask = jnp.asarray(head_mask, dtype=self.dtype)
            if head_mask.ndim == 1:  # the same heads in every layer
                head_mask = jnp.broadcast_to(head_mask, (config.num_hidden_layers, head_mask.shape[0]))
            elif head_mask.ndim != 2:
                raise ValueError(f"head_mask must have shape (num_heads,) or (num_layers, num_heads), got {tuple(head_mask.shape)}.")
            if head_mask.shape[0] != config.num_hidden_layers:
                raise ValueError(f"head_mask has {head_mask.shape[0]} layers, but the model has {config.num_hidden_layers}.")

        def as_int(x: Any) -> Any:
            return None if x is None else jnp.asarray(x, dtype="i4")

        inputs = {
            "input_ids": input_ids,
            "attention_mask": as_int(attention_mask),
            "token_type_ids": as_int(token_type_ids),
            "position_ids": as_int(position_ids),
            "head_mask": head_mask,
        }
        if encoder_hidden_states is not None:
            inputs["encoder_hidden_states"] = jnp.asarray(encoder_hidden_states)
            inputs["encoder_attention_mask"] = as_int(encoder_attention_mask)
        outputs = self._run(
            inputs,
            params=params,
            dropout_rng=dropout_rng,
            train=train,
            cache=past_key_values,
            output_attentions=bool(output_attentions),
            output_hidden_states=bool(output_hidden_states),
        )
        if past_key_values is not None:
            outputs, mutated = outputs
            if "past_key_values" not in {f.name for f in dataclasses.fields(outputs)}:
                raise ValueError(f"{type(self).__name__} does not return a cache; decode with FlaxBertForCausalLM or FlaxBertModel.")
            outputs = dataclasses.replace(outputs, past_key_values=unfreeze(mutated["cache"]))
        return outputs if return_dict else outputs.to_tuple()


class FlaxBertModel(FlaxBertPreTrainedModel):
    module_class = FlaxBertModule


class FlaxBertForPreTraining(FlaxBertPreTrainedModel):
    """Masked-LM and next-sentence heads, as in BERT's pretraining."""

    module_class = FlaxBertForPreTrainingModule


class FlaxBertForCausalLM(FlaxBertPreTrainedModel):
    """BERT as a left-to-right language model (set ``is_decoder=True``); decodes with :meth:`init_cache`."""

    module_class = FlaxBertForCausalLMModule
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"seq_relationship", *FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected]


class FlaxBertForMaskedLM(FlaxBertPreTrainedModel):
    module_class = FlaxBertForMaskedLMModule
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"seq_relationship", *FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected]


class FlaxBertForNextSentencePrediction(FlaxBertPreTrainedModel):
    module_class = FlaxBertForNextSentencePredictionModule
    _keys_to_ignore_on_load_unexpected = [r"predictions", *FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected]


class FlaxBertForSequenceClassification(FlaxBertPreTrainedModel):
    module_class = FlaxBertForSequenceClassificationModule


class FlaxBertForMultipleChoice(FlaxBertPreTrainedModel):
    module_class = FlaxBertForMultipleChoiceModule


class FlaxBertForTokenClassification(FlaxBertPreTrainedModel):
    module_class = FlaxBertForTokenClassificationModule
    _keys_to_ignore_on_load_unexpected = [r"pooler", *FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected]


class FlaxBertForQuestionAnswering(FlaxBertPreTrainedModel):
    module_class = FlaxBertForQuestionAnsweringModule
    _keys_to_ignore_on_load_unexpected = [r"pooler", *FlaxBertPreTrainedModel._keys_to_ignore_on_load_unexpected]
