"""BERT in TensorFlow (Keras 3): the blocks first (embeddings, attention, MLP, layer), then the model and its heads.

Layer and variable names are the checkpoint format shared with Transformers' TensorFlow BERT and,
through :func:`polyformers.conversion.tf_name_to_pt`, with our PyTorch BERT: ``bert``,
``layer_._0``, ``LayerNorm`` (not snake_case, kept for the format), ``mlm___cls`` and
``nsp___cls`` (both become PyTorch's ``cls``). Every variable is created in ``build``. The
computation mirrors :mod:`polyformers_bert.modeling_bert` line for line, so that converted weights
give the same outputs; losses follow Transformers' TensorFlow conventions (-100 is ignored; LM
losses have shape (1,), classification losses one value per example).

Shapes: B batch, T query length, S key length (past + current), H heads, D head size, C hidden.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from polyformers.activations_tf import get_tf_activation
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
from polyformers.modeling_tf_utils import (
    DUMMY_INPUTS,
    TFPreTrainedModel,
    extended_attention_mask,
    get_initializer,
    head_mask_per_layer,
    invert_attention_mask,
    masked_mean_cross_entropy,
    shape_list,
    tf_output_class,
    unpack_inputs,
)

from .configuration_bert import BertConfig

KVCache = tuple[tf.Tensor, ...]  # per layer: (self_k, self_v[, cross_k, cross_v]), each (B, H, S, D)


class TFBertEmbeddings(keras.layers.Layer):
    """Word + segment (+ absolute position) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        config = self.config
        init = get_initializer(config.initializer_range)
        dtype = self.variable_dtype
        # Plain variables in sub-scopes, named as Transformers' TF BERT names them
        # ("word_embeddings/weight", "token_type_embeddings/embeddings").
        with keras.name_scope("word_embeddings"):
            self.weight = keras.Variable(init, shape=(config.vocab_size, config.hidden_size), dtype=dtype, name="weight")
        with keras.name_scope("token_type_embeddings"):
            self.token_type_embeddings = keras.Variable(init, shape=(config.type_vocab_size, config.hidden_size), dtype=dtype, name="embeddings")
        with keras.name_scope("position_embeddings"):
            self.position_embeddings = keras.Variable(init, shape=(config.max_position_embeddings, config.hidden_size), dtype=dtype, name="embeddings")
        self.LayerNorm.build((None, None, config.hidden_size))

    def call(
        self, input_ids: tf.Tensor | None = None, token_type_ids: tf.Tensor | None = None,
        position_ids: tf.Tensor | None = None, inputs_embeds: tf.Tensor | None = None,
        past_key_values_length: int | tf.Tensor = 0, training: bool = False,
    ) -> tf.Tensor:
        if input_ids is not None:
            _check_ids_in_range(input_ids, self.config.vocab_size, "input_ids", "vocab_size")
            inputs_embeds = tf.gather(self.weight, input_ids)
        input_shape = shape_list(inputs_embeds)[:-1]
        seq_length = input_shape[1]
        if position_ids is None:
            position_ids = tf.range(past_key_values_length, seq_length + past_key_values_length)[None, :]
        if token_type_ids is None:
            token_type_ids = tf.zeros(input_shape, dtype=tf.int32)
        embeddings = inputs_embeds + tf.gather(self.token_type_embeddings, token_type_ids)  # (B, T, C)
        if self.config.position_embedding_type == "absolute":
            embeddings = embeddings + tf.gather(self.position_embeddings, position_ids)
        return self.dropout(self.LayerNorm(embeddings), training=training)


def _check_ids_in_range(ids: tf.Tensor, size: int, what: str, config_name: str) -> None:
    # Out-of-range ids silently give zeros on GPU; say so when we can (eagerly: not inside tf.function/XLA).
    if tf.executing_eagerly() and tf.size(ids) > 0:
        low, high = int(tf.reduce_min(ids)), int(tf.reduce_max(ids))
        if low < 0 or high >= size:
            raise ValueError(f"{what} must be in [0, {size}) ({config_name}={size}), got values from {low} to {high}.")


class TFBertSelfAttention(keras.layers.Layer):
    """Multi-head attention; self-attention, or cross-attention when encoder states are given."""

    def __init__(self, config: BertConfig, position_embedding_type: str | None = None, num_attention_heads: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention heads "
                f"({config.num_attention_heads}); change one of them in the config."
            )
        self.config = config
        # Fewer heads than the config says when some were pruned (config.pruned_heads).
        self.num_attention_heads = num_attention_heads or config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        init = get_initializer(config.initializer_range)
        self.query = keras.layers.Dense(self.all_head_size, kernel_initializer=init, name="query")
        self.key = keras.layers.Dense(self.all_head_size, kernel_initializer=init, name="key")
        self.value = keras.layers.Dense(self.all_head_size, kernel_initializer=init, name="value")
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)
        self.position_embedding_type = position_embedding_type or config.position_embedding_type
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = keras.layers.Embedding(
                2 * config.max_position_embeddings - 1, self.attention_head_size, embeddings_initializer=init, name="distance_embedding"
            )
        self.is_decoder = config.is_decoder

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        for dense in (self.query, self.key, self.value):
            dense.build((None, None, self.config.hidden_size))
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            self.distance_embedding.build((None,))

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        B, T = shape_list(x)[:2]
        return tf.transpose(tf.reshape(x, (B, T, self.num_attention_heads, self.attention_head_size)), (0, 2, 1, 3))  # (B, H, T, D)

    def call(
        self, hidden_states: tf.Tensor, attention_mask: tf.Tensor | None = None, head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None, encoder_attention_mask: tf.Tensor | None = None,
        past_key_value: KVCache | None = None, output_attentions: bool = False, training: bool = False,
    ) -> tuple[Any, ...]:
        query = self.split_heads(self.query(hidden_states))  # (B, H, T, D)
        is_cross_attention = encoder_hidden_states is not None
        if is_cross_attention:
            attention_mask = encoder_attention_mask
            if past_key_value is not None:  # encoder keys/values never change: reuse them
                key, value = past_key_value
            else:
                key = self.split_heads(self.key(encoder_hidden_states))
                value = self.split_heads(self.value(encoder_hidden_states))
        else:
            key = self.split_heads(self.key(hidden_states))
            value = self.split_heads(self.value(hidden_states))
            if past_key_value is not None:
                key = tf.concat([past_key_value[0], key], axis=2)  # (B, H, S, D)
                value = tf.concat([past_key_value[1], value], axis=2)
        present = (key, value) if self.is_decoder else None

        scores = tf.matmul(query, key, transpose_b=True)  # (B, H, T, S)
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            query_length, key_length = shape_list(query)[2], shape_list(key)[2]
            if past_key_value is not None:  # one new token at position key_length - 1
                position_ids_l = tf.reshape(key_length - 1, (-1, 1))
            else:
                position_ids_l = tf.range(query_length)[:, None]
            position_ids_r = tf.range(key_length)[None, :]
            distance = position_ids_l - position_ids_r  # (T, S)
            positional = tf.gather(self.distance_embedding.embeddings, distance + self.max_position_embeddings - 1)  # (T, S, D)
            positional = tf.cast(positional, query.dtype)
            scores = scores + tf.einsum("bhld,lrd->bhlr", query, positional)
            if self.position_embedding_type == "relative_key_query":
                scores = scores + tf.einsum("bhrd,lrd->bhlr", key, positional)
        scores = scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + attention_mask  # additive: 0 keeps, dtype-min drops
        probs = self.dropout(tf.nn.softmax(scores, axis=-1), training=training)
        if head_mask is not None:
            probs = probs * head_mask
        context = tf.matmul(probs, value)  # (B, H, T, D)

        B, T = shape_list(hidden_states)[:2]
        context = tf.reshape(tf.transpose(context, (0, 2, 1, 3)), (B, T, self.all_head_size))  # (B, T, C)
        outputs = (context, probs) if output_attentions else (context,)
        if self.is_decoder:
            outputs = outputs + (present,)
        return outputs


class TFBertSelfOutput(keras.layers.Layer):
    def __init__(self, config: BertConfig, in_features: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.in_features = in_features or config.hidden_size  # smaller when heads were pruned
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=get_initializer(config.initializer_range), name="dense")
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.dense.build((None, None, self.in_features))
        self.LayerNorm.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + input_tensor)


class TFBertAttention(keras.layers.Layer):
    def __init__(self, config: BertConfig, position_embedding_type: str | None = None, num_attention_heads: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        # Attribute names differ from the layer names: "self" and "output" are taken in Python/Keras.
        self.self_attention = TFBertSelfAttention(config, position_embedding_type, num_attention_heads, name="self")
        self.dense_output = TFBertSelfOutput(config, in_features=self.self_attention.all_head_size, name="output")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.self_attention.build(None)
        self.dense_output.build(None)

    def call(
        self, hidden_states, attention_mask=None, head_mask=None, encoder_hidden_states=None,
        encoder_attention_mask=None, past_key_value=None, output_attentions=False, training=False,
    ):
        self_outputs = self.self_attention(
            hidden_states,
            attention_mask=attention_mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            past_key_value=past_key_value,
            output_attentions=output_attentions,
            training=training,
        )
        attention_output = self.dense_output(self_outputs[0], hidden_states, training=training)
        return (attention_output,) + self_outputs[1:]


class TFBertIntermediate(keras.layers.Layer):
    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.dense = keras.layers.Dense(config.intermediate_size, kernel_initializer=get_initializer(config.initializer_range), name="dense")
        self.intermediate_act_fn = get_tf_activation(config.hidden_act)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.dense.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class TFBertOutput(keras.layers.Layer):
    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=get_initializer(config.initializer_range), name="dense")
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.dense.build((None, None, self.config.intermediate_size))
        self.LayerNorm.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + input_tensor)


class TFBertLayer(keras.layers.Layer):
    """Self-attention, optional cross-attention (decoders), then the MLP."""

    def __init__(self, config: BertConfig, layer_index: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        pruned = len(config.pruned_heads.get(layer_index, []))
        self.attention = TFBertAttention(config, num_attention_heads=config.num_attention_heads - pruned, name="attention")
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True in the config: only decoders attend to an encoder.")
            self.crossattention = TFBertAttention(config, position_embedding_type="absolute", name="crossattention")
        self.intermediate = TFBertIntermediate(config, name="intermediate")
        self.bert_output = TFBertOutput(config, name="output")  # Keras layers have an `output` property

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.attention.build(None)
        if self.add_cross_attention:
            self.crossattention.build(None)
        self.intermediate.build(None)
        self.bert_output.build(None)

    def call(
        self, hidden_states, attention_mask=None, head_mask=None, encoder_hidden_states=None,
        encoder_attention_mask=None, past_key_value=None, output_attentions=False, training=False,
    ):
        self_attn_past = past_key_value[:2] if past_key_value is not None else None
        self_outputs = self.attention(
            hidden_states,
            attention_mask=attention_mask,
            head_mask=head_mask,
            past_key_value=self_attn_past,
            output_attentions=output_attentions,
            training=training,
        )
        attention_output = self_outputs[0]
        if self.is_decoder:
            outputs, present = self_outputs[1:-1], self_outputs[-1]
        else:
            outputs, present = self_outputs[1:], None

        if self.is_decoder and encoder_hidden_states is not None:
            if not self.add_cross_attention:
                raise ValueError(
                    f"encoder_hidden_states were passed, but {self.name} has no cross-attention layers: "
                    f"build the model with add_cross_attention=True in its config."
                )
            cross_past = past_key_value[-2:] if past_key_value is not None and len(past_key_value) == 4 else None
            cross_outputs = self.crossattention(
                attention_output,
                attention_mask=attention_mask,
                head_mask=head_mask,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                past_key_value=cross_past,
                output_attentions=output_attentions,
                training=training,
            )
            attention_output = cross_outputs[0]
            outputs = outputs + cross_outputs[1:-1]
            present = present + cross_outputs[-1]

        # PyTorch's chunk_size_feed_forward computes the same values in pieces; one piece here.
        layer_output = self.bert_output(self.intermediate(attention_output), attention_output, training=training)
        outputs = (layer_output,) + outputs
        if self.is_decoder:
            outputs = outputs + (present,)
        return outputs


class TFBertEncoder(keras.layers.Layer):
    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.layer = [TFBertLayer(config, i, name=f"layer_._{i}") for i in range(config.num_hidden_layers)]

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        for layer in self.layer:
            layer.build(None)

    def call(
        self, hidden_states, attention_mask=None, head_mask=None, encoder_hidden_states=None,
        encoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
        output_hidden_states=False, training=False,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        all_hidden_states = () if output_hidden_states else None
        all_self_attentions = () if output_attentions else None
        all_cross_attentions = () if output_attentions and self.config.add_cross_attention else None
        next_cache = () if use_cache else None

        for i, layer in enumerate(self.layer):
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            layer_outputs = layer(
                hidden_states,
                attention_mask=attention_mask,
                head_mask=head_mask[i] if head_mask is not None else None,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                past_key_value=past_key_values[i] if past_key_values is not None else None,
                output_attentions=output_attentions,
                training=training,
            )
            hidden_states = layer_outputs[0]
            if use_cache:
                next_cache = next_cache + (layer_outputs[-1],)
            if output_attentions:
                all_self_attentions = all_self_attentions + (layer_outputs[1],)
                if self.config.add_cross_attention and encoder_hidden_states is not None:
                    all_cross_attentions = all_cross_attentions + (layer_outputs[2],)
        if output_hidden_states:
            all_hidden_states = all_hidden_states + (hidden_states,)
        return tf_output_class(BaseModelOutputWithPastAndCrossAttentions)(
            last_hidden_state=hidden_states,
            past_key_values=next_cache,
            hidden_states=all_hidden_states,
            attentions=all_self_attentions,
            cross_attentions=all_cross_attentions,
        )


class TFBertPooler(keras.layers.Layer):
    """tanh(dense(first token)): the [CLS] summary that classification heads read."""

    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=get_initializer(config.initializer_range), activation="tanh", name="dense")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.dense.build((None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.dense(hidden_states[:, 0])


class TFBertPredictionHeadTransform(keras.layers.Layer):
    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=get_initializer(config.initializer_range), name="dense")
        self.transform_act_fn = get_tf_activation(config.hidden_act)
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.dense.build((None, None, self.config.hidden_size))
        self.LayerNorm.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class TFBertLMPredictionHead(keras.layers.Layer):
    """Transform, then project to the vocabulary with the word embeddings (tied) and an own bias.

    With ``tie_word_embeddings=False`` the projection has its own ``decoder/weight`` (V, C), which
    PyTorch calls ``cls.predictions.decoder.weight``.
    """

    def __init__(self, config: BertConfig, input_embeddings: TFBertEmbeddings, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.transform = TFBertPredictionHeadTransform(config, name="transform")
        self.input_embeddings = input_embeddings  # shared, not owned: its variables stay under bert/

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.transform.build(None)
        self.bias = self.add_weight(shape=(self.config.vocab_size,), initializer="zeros", name="bias")
        if not self.config.tie_word_embeddings:
            with keras.name_scope("decoder"):
                shape = (self.config.vocab_size, self.config.hidden_size)
                self.decoder = keras.Variable(get_initializer(self.config.initializer_range), shape=shape, dtype=self.variable_dtype, name="weight")

    @property
    def decoder_weight(self) -> tf.Variable:
        return self.input_embeddings.weight if self.config.tie_word_embeddings else self.decoder

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        hidden_states = self.transform(hidden_states)
        return tf.matmul(hidden_states, self.decoder_weight, transpose_b=True) + self.bias  # (B, T, V)


class TFBertMLMHead(keras.layers.Layer):
    def __init__(self, config: BertConfig, input_embeddings: TFBertEmbeddings, **kwargs: Any):
        super().__init__(**kwargs)
        self.predictions = TFBertLMPredictionHead(config, input_embeddings, name="predictions")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.predictions.build(None)

    def call(self, sequence_output: tf.Tensor) -> tf.Tensor:
        return self.predictions(sequence_output)


class TFBertNSPHead(keras.layers.Layer):
    def __init__(self, config: BertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.seq_relationship = keras.layers.Dense(2, kernel_initializer=get_initializer(config.initializer_range), name="seq_relationship")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.seq_relationship.build((None, self.config.hidden_size))

    def call(self, pooled_output: tf.Tensor) -> tf.Tensor:
        return self.seq_relationship(pooled_output)


class TFBertMainLayer(keras.layers.Layer):
    """The bare encoder (or, with ``is_decoder``, decoder): hidden states and the pooled [CLS].

    Every model keeps it under the name ``bert`` (Transformers' TensorFlow layout, the base
    model included), so its variables are ``bert/...`` in every checkpoint.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = TFBertEmbeddings(config, name="embeddings")
        self.encoder = TFBertEncoder(config, name="encoder")
        self.pooler = TFBertPooler(config, name="pooler") if add_pooling_layer else None

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.embeddings.build(None)
        self.encoder.build(None)
        if self.pooler is not None:
            self.pooler.build(None)

    def get_input_embeddings(self) -> TFBertEmbeddings:
        return self.embeddings

    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
        use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions | tuple:
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.use_return_dict
        use_cache = (use_cache if use_cache is not None else config.use_cache) if config.is_decoder else False

        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("Pass either input_ids or inputs_embeds, not both.")
        if input_ids is not None:
            if input_ids.shape.rank != 2:
                raise ValueError(f"input_ids must have shape (batch, sequence), got {tuple(input_ids.shape)}.")
            input_shape = shape_list(input_ids)
        elif inputs_embeds is not None:
            input_shape = shape_list(inputs_embeds)[:-1]
        else:
            raise ValueError("Pass input_ids or inputs_embeds.")
        batch_size, seq_length = input_shape
        past_length = shape_list(past_key_values[0][0])[2] if past_key_values else 0
        if (
            isinstance(seq_length, int)
            and isinstance(past_length, int)
            and seq_length + past_length > config.max_position_embeddings
            and position_ids is None
            and config.position_embedding_type == "absolute"
        ):
            raise ValueError(
                f"The sequence has {seq_length + past_length} tokens, but this model takes at most "
                f"max_position_embeddings={config.max_position_embeddings}; truncate the input "
                f"(e.g. tokenizer(..., truncation=True))."
            )

        dtype = self.compute_dtype
        if attention_mask is None and config.is_decoder:
            attention_mask = tf.ones((batch_size, seq_length + past_length), dtype=dtype)
        mask = extended_attention_mask(attention_mask, input_shape, config.is_decoder, past_length, dtype) if attention_mask is not None else None

        encoder_mask = None
        if config.is_decoder and encoder_hidden_states is not None:
            if encoder_attention_mask is None:
                encoder_attention_mask = tf.ones(shape_list(encoder_hidden_states)[:2], dtype=dtype)
            encoder_mask = invert_attention_mask(encoder_attention_mask, dtype)

        head_masks = head_mask_per_layer(head_mask, config.num_hidden_layers, dtype)
        if all(h is None for h in head_masks):
            head_masks = None

        embedding_output = self.embeddings(
            input_ids=input_ids,
            position_ids=position_ids,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            past_key_values_length=past_length,
            training=training,
        )
        encoder_outputs = self.encoder(
            embedding_output,
            attention_mask=mask,
            head_mask=head_masks,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            training=training,
        )
        sequence_output = encoder_outputs.last_hidden_state
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        output = tf_output_class(BaseModelOutputWithPoolingAndCrossAttentions)(
            last_hidden_state=sequence_output, pooler_output=pooled_output,
            past_key_values=encoder_outputs.past_key_values, hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions, cross_attentions=encoder_outputs.cross_attentions,
        )
        return output if return_dict else output.to_tuple()


# --- models ------------------------------------------------------------------------------------


def _finish(output: ModelOutput, return_dict: bool | None, config: BertConfig) -> ModelOutput | tuple:
    return_dict = return_dict if return_dict is not None else config.use_return_dict
    return output if return_dict else output.to_tuple()


def _classification_loss(config: BertConfig, num_labels: int, logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """One loss per example: regression, single-label or multi-label, chosen by ``config.problem_type``."""
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype.is_integer:
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        labels = tf.reshape(tf.cast(labels, logits.dtype), shape_list(logits))
        return tf.reduce_mean(tf.square(logits - labels), axis=-1)  # (B,)
    if config.problem_type == "single_label_classification":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(tf.cast(labels, tf.int32), (-1,)), logits=logits)
    labels = tf.cast(labels, logits.dtype)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)


def _next_sentence_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy; examples labelled -100 get 0, as in Transformers."""
    labels = tf.reshape(tf.cast(labels, tf.int32), (-1,))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.nn.relu(labels), logits=tf.reshape(logits, (-1, 2)))
    return losses * tf.cast(labels != -100, losses.dtype)


@dataclass(repr=False)
class TFBertForPreTrainingOutput(ModelOutput):
    loss: Any = None
    prediction_logits: Any = None
    seq_relationship_logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


_LM_HEAD_TIES = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
# Names in Transformers' (and our) checkpoints that a model without those parts ignores.
_IGNORE_POSITION_BUFFERS = [r"position_ids$", r"token_type_ids$"]
_IGNORE_LM_HEAD_COPIES = [r"cls\.predictions\.decoder\.bias$", r"cls\.predictions\.decoder\.weight$"]
_IGNORE_PRETRAINING_HEADS = [r"mlm___cls", r"nsp___cls", r"cls\.predictions", r"cls\.seq_relationship"]


class TFBertPreTrainedModel(TFPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    _keys_to_ignore_on_load_unexpected = list(_IGNORE_POSITION_BUFFERS)


class TFBertModel(TFBertPreTrainedModel):
    """The bare encoder (or decoder): hidden states and the pooled [CLS]."""

    def __init__(self, config: BertConfig, *inputs: Any, add_pooling_layer: bool = True, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.bert = TFBertMainLayer(config, add_pooling_layer=add_pooling_layer, name="bert")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
        use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False,
    ):
        return self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values, use_cache=use_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
            training=training,
        )


class _WithLMHead:
    """Models whose ``mlm___cls`` head decodes with the (tied) word embeddings."""

    _pt_tied_weights_keys = _LM_HEAD_TIES

    def get_output_embeddings(self) -> TFBertEmbeddings:
        return self.bert.embeddings

    def get_lm_head(self) -> keras.layers.Layer:
        return self.mlm.predictions


class TFBertForPreTraining(_WithLMHead, TFBertPreTrainedModel):
    """Masked-LM and next-sentence heads, as in BERT's pretraining."""

    _keys_to_ignore_on_load_unexpected = [*_IGNORE_POSITION_BUFFERS, *_IGNORE_LM_HEAD_COPIES]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.bert = TFBertMainLayer(config, name="bert")
        self.nsp = TFBertNSPHead(config, name="nsp___cls")
        self.mlm = TFBertMLMHead(config, input_embeddings=self.bert.embeddings, name="mlm___cls")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.nsp.build(None)
        self.mlm.build(None)

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
        next_sentence_label=None, training=False,
    ):
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        prediction_scores = self.mlm(outputs.last_hidden_state)  # (B, T, V)
        seq_relationship_score = self.nsp(outputs.pooler_output)  # (B, 2)
        total_loss = None
        if labels is not None and next_sentence_label is not None:
            mlm_loss = masked_mean_cross_entropy(labels, prediction_scores)
            nsp = _next_sentence_loss(next_sentence_label, seq_relationship_score)
            nsp_mask = tf.cast(tf.reshape(next_sentence_label, (-1,)) != -100, nsp.dtype)
            total_loss = mlm_loss + tf.reduce_sum(nsp) / tf.reduce_sum(nsp_mask)  # (1,)
        output = tf_output_class(TFBertForPreTrainingOutput)(
            loss=total_loss, prediction_logits=prediction_scores, seq_relationship_logits=seq_relationship_score,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


class TFBertLMHeadModel(_WithLMHead, TFBertPreTrainedModel):
    """BERT as a left-to-right language model (set ``is_decoder=True``); labels are shifted inside."""

    _keys_to_ignore_on_load_unexpected = [r"pooler", r"cls\.seq_relationship", r"nsp___cls", *_IGNORE_POSITION_BUFFERS, *_IGNORE_LM_HEAD_COPIES]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        if not config.is_decoder:
            warnings.warn("If you want to use TFBertLMHeadModel as a standalone, add `is_decoder=True` to the config.", stacklevel=2)
        self.bert = TFBertMainLayer(config, add_pooling_layer=False, name="bert")
        self.mlm = TFBertMLMHead(config, input_embeddings=self.bert.embeddings, name="mlm___cls")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.mlm.build(None)

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
        use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
        training=False,
    ):
        if labels is not None:
            use_cache = False
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values, use_cache=use_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            training=training,
        )
        logits = self.mlm(outputs.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:  # predict token t+1 from tokens <= t
            loss = masked_mean_cross_entropy(labels[:, 1:], logits[:, :-1])
        output = tf_output_class(CausalLMOutputWithCrossAttentions)(
            loss=loss, logits=logits, past_key_values=outputs.past_key_values, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions, cross_attentions=outputs.cross_attentions,
        )
        return _finish(output, return_dict, self.config)


class TFBertForMaskedLM(_WithLMHead, TFBertPreTrainedModel):
    _keys_to_ignore_on_load_unexpected = [r"pooler", r"cls\.seq_relationship", r"nsp___cls", *_IGNORE_POSITION_BUFFERS, *_IGNORE_LM_HEAD_COPIES]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        if config.is_decoder:
            warnings.warn("If you want to use TFBertForMaskedLM make sure `config.is_decoder=False` for bi-directional self-attention.", stacklevel=2)
        self.bert = TFBertMainLayer(config, add_pooling_layer=False, name="bert")
        self.mlm = TFBertMLMHead(config, input_embeddings=self.bert.embeddings, name="mlm___cls")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.mlm.build(None)

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, output_attentions=None,
        output_hidden_states=None, return_dict=None, labels=None, training=False,
    ):
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        logits = self.mlm(outputs.last_hidden_state)
        loss = masked_mean_cross_entropy(labels, logits) if labels is not None else None  # -100: no target
        output = tf_output_class(MaskedLMOutput)(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


class TFBertForNextSentencePrediction(TFBertPreTrainedModel):
    _keys_to_ignore_on_load_unexpected = [r"mlm___cls", r"cls\.predictions", *_IGNORE_POSITION_BUFFERS]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.bert = TFBertMainLayer(config, name="bert")
        self.nsp = TFBertNSPHead(config, name="nsp___cls")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.nsp.build(None)

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
        next_sentence_label=None, training=False, labels=None,
    ):
        # Transformers' TensorFlow spelling is next_sentence_label; PyTorch's (and ours there) is labels.
        labels = next_sentence_label if next_sentence_label is not None else labels
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        logits = self.nsp(outputs.pooler_output)  # (B, 2)
        loss = _next_sentence_loss(labels, logits) if labels is not None else None
        output = tf_output_class(NextSentencePredictorOutput)(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


def _classifier_dropout(config: BertConfig) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


class TFBertForSequenceClassification(TFBertPreTrainedModel):
    """Pooled [CLS] -> dropout -> dense; loss by ``problem_type`` (regression, single- or multi-label)."""

    _keys_to_ignore_on_load_unexpected = [*_IGNORE_PRETRAINING_HEADS, *_IGNORE_POSITION_BUFFERS]
    _keys_to_ignore_on_load_missing = [r"dropout"]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.bert = TFBertMainLayer(config, name="bert")
        self.dropout = keras.layers.Dropout(_classifier_dropout(config), name="dropout")
        self.classifier = keras.layers.Dense(config.num_labels, kernel_initializer=get_initializer(config.initializer_range), name="classifier")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.classifier.build((None, self.config.hidden_size))

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
        training=False,
    ):
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output, training=training))  # (B, num_labels)
        loss = _classification_loss(self.config, self.num_labels, logits, labels) if labels is not None else None
        output = tf_output_class(SequenceClassifierOutput)(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


class TFBertForMultipleChoice(TFBertPreTrainedModel):
    """Scores each of C choices: inputs are (B, C, T), logits (B, C)."""

    _keys_to_ignore_on_load_unexpected = [*_IGNORE_PRETRAINING_HEADS, *_IGNORE_POSITION_BUFFERS]
    _keys_to_ignore_on_load_missing = [r"dropout"]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.bert = TFBertMainLayer(config, name="bert")
        self.dropout = keras.layers.Dropout(_classifier_dropout(config), name="dropout")
        self.classifier = keras.layers.Dense(1, kernel_initializer=get_initializer(config.initializer_range), name="classifier")

    @property
    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        return {"input_ids": tf.constant([DUMMY_INPUTS, DUMMY_INPUTS], dtype=tf.int32)}  # (2 examples, 3 choices, 5)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.classifier.build((None, self.config.hidden_size))

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
        training=False,
    ):
        num_choices = shape_list(input_ids if input_ids is not None else inputs_embeds)[1]

        def flat(x: tf.Tensor | None) -> tf.Tensor | None:  # (B, C, ...) -> (B*C, ...)
            return tf.reshape(x, [-1, *shape_list(x)[2:]]) if x is not None else None

        outputs = self.bert(
            flat(input_ids), attention_mask=flat(attention_mask), token_type_ids=flat(token_type_ids),
            position_ids=flat(position_ids), head_mask=head_mask, inputs_embeds=flat(inputs_embeds),
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            training=training,
        )
        logits = tf.reshape(self.classifier(self.dropout(outputs.pooler_output, training=training)), (-1, num_choices))  # (B, C)
        loss = None
        if labels is not None:
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(tf.cast(labels, tf.int32), (-1,)), logits=logits)  # (B,)
        output = tf_output_class(MultipleChoiceModelOutput)(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


class TFBertForTokenClassification(TFBertPreTrainedModel):
    _keys_to_ignore_on_load_unexpected = [r"pooler", *_IGNORE_PRETRAINING_HEADS, *_IGNORE_POSITION_BUFFERS]
    _keys_to_ignore_on_load_missing = [r"dropout"]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.bert = TFBertMainLayer(config, add_pooling_layer=False, name="bert")
        self.dropout = keras.layers.Dropout(_classifier_dropout(config), name="dropout")
        self.classifier = keras.layers.Dense(config.num_labels, kernel_initializer=get_initializer(config.initializer_range), name="classifier")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.classifier.build((None, None, self.config.hidden_size))

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
        training=False,
    ):
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state, training=training))  # (B, T, num_labels)
        loss = masked_mean_cross_entropy(labels, logits, ignore_all_negative=True) if labels is not None else None
        output = tf_output_class(TokenClassifierOutput)(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


class TFBertForQuestionAnswering(TFBertPreTrainedModel):
    """Start and end logits over tokens for extractive QA."""

    _keys_to_ignore_on_load_unexpected = [r"pooler", *_IGNORE_PRETRAINING_HEADS, *_IGNORE_POSITION_BUFFERS]

    def __init__(self, config: BertConfig, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.bert = TFBertMainLayer(config, add_pooling_layer=False, name="bert")
        self.qa_outputs = keras.layers.Dense(config.num_labels, kernel_initializer=get_initializer(config.initializer_range), name="qa_outputs")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.bert.build(None)
        self.qa_outputs.build((None, None, self.config.hidden_size))

    @unpack_inputs
    def call(
        self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
        inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, start_positions=None,
        end_positions=None, training=False,
    ):
        outputs = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        logits = self.qa_outputs(outputs.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = tf.unstack(logits, num=2, axis=-1)
        total_loss = None
        if start_positions is not None and end_positions is not None:
            total_loss = (_span_loss(start_positions, start_logits) + _span_loss(end_positions, end_logits)) / 2  # (B,)
        output = tf_output_class(QuestionAnsweringModelOutput)(
            loss=total_loss, start_logits=start_logits, end_logits=end_logits, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return _finish(output, return_dict, self.config)


def _span_loss(positions: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy of an answer boundary, as our PyTorch BERT computes it: positions
    are clamped to [0, T], and T (an answer cut off by truncation) counts for nothing."""
    seq_length = shape_list(logits)[1]
    positions = tf.clip_by_value(tf.reshape(tf.cast(positions, tf.int32), (-1,)), 0, seq_length)
    kept = positions < seq_length
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.where(kept, positions, 0), logits=logits)
    return losses * tf.cast(kept, losses.dtype)


__all__ = [
    "TFBertModel",
    "TFBertForPreTraining",
    "TFBertLMHeadModel",
    "TFBertForMaskedLM",
    "TFBertForNextSentencePrediction",
    "TFBertForSequenceClassification",
    "TFBertForMultipleChoice",
    "TFBertForTokenClassification",
    "TFBertForQuestionAnswering",
    "TFBertMainLayer",
    "TFBertPreTrainedModel",
]
