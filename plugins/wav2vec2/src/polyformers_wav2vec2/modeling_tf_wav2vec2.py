"""Wav2Vec2 in TensorFlow (Keras 3): the conv feature encoder, the Transformer encoder, then the model and its heads.

Layer and variable names are the checkpoint format shared with Transformers' TensorFlow Wav2Vec2
(``wav2vec2/feature_extractor/conv_layers.0/conv/kernel:0``, ``encoder/layers.0/...``) and,
through :func:`polyformers.conversion.tf_name_to_pt`, with our PyTorch Wav2Vec2. The positional
convolution keeps weight norm's two factors as Transformers' TensorFlow model does:
``weight_v`` in PyTorch's (out, in / groups, k) layout and ``weight_g`` shaped (k, 1, 1); the
kernel is rebuilt from them on every call (nothing is assigned during a forward pass).

The computation mirrors :mod:`polyformers_wav2vec2.modeling_wav2vec2` line for line, so that
converted weights give the same outputs. Where Transformers' TensorFlow model differs from its
PyTorch one we follow PyTorch (and say so):

- the feature encoder's GroupNorm/LayerNorm use PyTorch's default epsilon 1e-5, not ``layer_norm_eps``;
- the adapter (``add_adapter``) and attention adapters (``adapter_attn_dim``) exist here;
- hidden states follow Transformers 5.x: for ``do_stable_layer_norm`` the last one is the last
  layer's output *before* the encoder's final LayerNorm (4.x's TensorFlow model gives it after);
- ``ctc_loss_reduction="mean"`` divides each example's loss by its target length before
  averaging (PyTorch's ``ctc_loss``); ``ctc_zero_infinity`` is honoured; ``"sum"`` (the
  default) equals Transformers' TensorFlow loss.

Shapes: B batch, L audio samples, T frames, C hidden size, H heads, D head size. TensorFlow
convolutions are channels-last, so frames are (B, T, C) throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from polyformers.activations_tf import get_tf_activation
from polyformers.modeling_outputs import ModelOutput, SequenceClassifierOutput
from polyformers.modeling_tf_utils import (
    TFPreTrainedModel,
    get_initializer,
    masked_mean_cross_entropy,
    shape_list,
    tf_output_class,
    unpack_inputs,
)

from ._common import compute_mask_indices, conv_output_lengths
from .configuration_wav2vec2 import Wav2Vec2Config

TORCH_NORM_EPS = 1e-5  # nn.LayerNorm / nn.GroupNorm default, used by the layers PyTorch builds without eps


# --- outputs ---------------------------------------------------------------------------------------


@dataclass(repr=False)
class TFWav2Vec2BaseModelOutput(ModelOutput):
    last_hidden_state: Any = None
    extract_features: Any = None
    hidden_states: Any = None
    attentions: Any = None


@dataclass(repr=False)
class TFCausalLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


# --- feature encoder ---------------------------------------------------------------------------------


class TFWav2Vec2GroupNorm(keras.layers.Layer):
    """GroupNorm with one group per channel: each channel normalised over time, (B, T, C) -> (B, T, C)."""

    def __init__(self, channels: int, epsilon: float = TORCH_NORM_EPS, **kwargs: Any):
        super().__init__(**kwargs)
        self.channels = channels
        self.epsilon = epsilon

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.gamma = self.add_weight(shape=(self.channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(self.channels,), initializer="zeros", name="beta")

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        mean, variance = tf.nn.moments(hidden_states, axes=[1], keepdims=True)  # (B, 1, C)
        normed = (hidden_states - mean) * tf.math.rsqrt(variance + self.epsilon)
        return normed * self.gamma + self.beta


class TFWav2Vec2ConvLayer(keras.layers.Layer):
    """Conv, then (per ``norm``) GroupNorm, LayerNorm over channels or nothing, then the activation.

    One class for PyTorch's three (``NoLayerNorm``/``LayerNorm``/``GroupNorm`` conv layers): the
    variables are the same but for the norm's.
    """

    def __init__(self, config: Wav2Vec2Config, layer_id: int, norm: str | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.in_dim = config.conv_dim[layer_id - 1] if layer_id > 0 else 1
        self.out_dim = config.conv_dim[layer_id]
        self.conv = keras.layers.Conv1D(
            self.out_dim, config.conv_kernel[layer_id], strides=config.conv_stride[layer_id], use_bias=config.conv_bias,
            kernel_initializer="he_normal", name="conv",
        )
        if norm == "group":
            self.layer_norm = TFWav2Vec2GroupNorm(self.out_dim, name="layer_norm")
        elif norm == "layer":
            self.layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="layer_norm")
        else:
            self.layer_norm = None
        self.activation = get_tf_activation(config.feat_extract_activation)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.conv.build((None, None, self.in_dim))
        if self.layer_norm is not None:
            self.layer_norm.build((None, None, self.out_dim))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        hidden_states = self.conv(hidden_states)  # (B, T, C_conv)
        if self.layer_norm is not None:
            hidden_states = self.layer_norm(hidden_states)
        return self.activation(hidden_states)


class TFWav2Vec2FeatureEncoder(keras.layers.Layer):
    """Raw audio (B, L) to frames (B, T, C_conv) through the conv stack."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        if config.feat_extract_norm == "group":
            norms = ["group"] + [None] * (config.num_feat_extract_layers - 1)
        elif config.feat_extract_norm == "layer":
            norms = ["layer"] * config.num_feat_extract_layers
        else:
            raise ValueError(f"config.feat_extract_norm must be 'group' or 'layer', got {config.feat_extract_norm!r}.")
        self.conv_layers = [TFWav2Vec2ConvLayer(config, i, norm, name=f"conv_layers.{i}") for i, norm in enumerate(norms)]

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        for layer in self.conv_layers:
            layer.build(None)

    def call(self, input_values: tf.Tensor) -> tf.Tensor:
        hidden_states = input_values[:, :, None]  # (B, L, 1)
        for conv_layer in self.conv_layers:
            hidden_states = conv_layer(hidden_states)
        return hidden_states


class TFWav2Vec2FeatureProjection(keras.layers.Layer):
    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm")
        self.projection = keras.layers.Dense(config.hidden_size, kernel_initializer=get_initializer(config.initializer_range), name="projection")
        self.dropout = keras.layers.Dropout(config.feat_proj_dropout)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.layer_norm.build((None, None, self.config.conv_dim[-1]))
        self.projection.build((None, None, self.config.conv_dim[-1]))

    def call(self, hidden_states: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        normed = self.layer_norm(hidden_states)  # the quantizer of pre-training reads these
        return self.dropout(self.projection(normed), training=training), normed


class TFWav2Vec2WeightNormConv1D(keras.layers.Layer):
    """A grouped Conv1D whose kernel is ``g * v / ||v||`` (norm over all axes but the kernel's).

    Variables as Transformers' TensorFlow model names them: ``weight_v`` (out, in / groups, k),
    ``weight_g`` (k, 1, 1), ``bias`` (out,). Input is zero-padded by ``padding`` frames each side.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int, padding: int, **kwargs: Any):
        super().__init__(**kwargs)
        if channels % groups != 0:
            raise ValueError(
                f"hidden_size ({channels}) must be a multiple of num_conv_pos_embedding_groups ({groups}); change one of them in the config."
            )
        self.channels = channels
        self.kernel_size = kernel_size
        self.groups = groups
        self.padding = padding

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        group_size = self.channels // self.groups
        std = 2 * math.sqrt(1 / (self.kernel_size * self.channels))  # PyTorch's initialisation
        self.weight_v = self.add_weight(shape=(self.channels, group_size, self.kernel_size), initializer=keras.initializers.RandomNormal(stddev=std), name="weight_v")
        self.weight_g = self.add_weight(shape=(self.kernel_size, 1, 1), initializer="ones", name="weight_g")
        self.bias = self.add_weight(shape=(self.channels,), initializer="zeros", name="bias")

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        norm = tf.sqrt(tf.reduce_sum(tf.square(self.weight_v), axis=[0, 1], keepdims=True))  # (1, 1, k)
        weight = self.weight_v * (tf.transpose(self.weight_g) / norm)  # (out, in / G, k), as PyTorch's _weight_norm
        kernel = tf.transpose(weight, (2, 1, 0))  # (k, in / G, out)
        hidden_states = tf.pad(hidden_states, ((0, 0), (self.padding, self.padding), (0, 0)))
        # One convolution per group: TensorFlow's CPU kernels do not all support grouped convs.
        inputs = tf.split(hidden_states, self.groups, axis=-1)
        kernels = tf.split(kernel, self.groups, axis=-1)
        outputs = [tf.nn.conv1d(x, k, stride=1, padding="VALID") for x, k in zip(inputs, kernels)]
        return tf.concat(outputs, axis=-1) + self.bias  # (B, T + pad, C)


class TFWav2Vec2PositionalConvEmbedding(keras.layers.Layer):
    """Relative positions from a grouped, weight-normed convolution over time."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.conv = TFWav2Vec2WeightNormConv1D(
            config.hidden_size, config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups, config.num_conv_pos_embeddings // 2, name="conv"
        )
        # An even kernel with padding k // 2 gives one frame too many: drop the last.
        self.num_pad_remove = 1 if config.num_conv_pos_embeddings % 2 == 0 else 0
        self.activation = get_tf_activation(config.feat_extract_activation)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.conv.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        hidden_states = self.conv(hidden_states)  # (B, T + pad, C)
        if self.num_pad_remove:
            hidden_states = hidden_states[:, : -self.num_pad_remove]
        return self.activation(hidden_states)


# --- Transformer encoder ------------------------------------------------------------------------------


class TFWav2Vec2Attention(keras.layers.Layer):
    """Multi-head self-attention with an additive (B, 1, 1, T) mask."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(
                f"hidden_size ({self.embed_dim}) must be a multiple of num_attention_heads ({self.num_heads}); "
                "change one of them in the config."
            )
        self.scaling = self.head_dim**-0.5
        init = get_initializer(config.initializer_range)
        self.k_proj = keras.layers.Dense(self.embed_dim, kernel_initializer=init, name="k_proj")
        self.q_proj = keras.layers.Dense(self.embed_dim, kernel_initializer=init, name="q_proj")
        self.v_proj = keras.layers.Dense(self.embed_dim, kernel_initializer=init, name="v_proj")
        self.out_proj = keras.layers.Dense(self.embed_dim, kernel_initializer=init, name="out_proj")
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        for dense in (self.k_proj, self.q_proj, self.v_proj, self.out_proj):
            dense.build((None, None, self.embed_dim))

    def call(self, hidden_states: tf.Tensor, attention_mask: tf.Tensor | None = None, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        B, T, C = shape_list(hidden_states)

        def split(x: tf.Tensor) -> tf.Tensor:
            return tf.transpose(tf.reshape(x, (B, T, self.num_heads, self.head_dim)), (0, 2, 1, 3))  # (B, H, T, D)

        query, key, value = split(self.q_proj(hidden_states)), split(self.k_proj(hidden_states)), split(self.v_proj(hidden_states))
        scores = tf.matmul(query, key, transpose_b=True) * self.scaling  # (B, H, T, T)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = tf.nn.softmax(scores, axis=-1)
        context = tf.matmul(self.dropout(probs, training=training), value)  # (B, H, T, D)
        context = tf.reshape(tf.transpose(context, (0, 2, 1, 3)), (B, T, C))
        return self.out_proj(context), probs


class TFWav2Vec2FeedForward(keras.layers.Layer):
    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        init = get_initializer(config.initializer_range)
        self.intermediate_dropout = keras.layers.Dropout(config.activation_dropout)
        self.intermediate_dense = keras.layers.Dense(config.intermediate_size, kernel_initializer=init, name="intermediate_dense")
        self.intermediate_act_fn = get_tf_activation(config.hidden_act)
        self.output_dense = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="output_dense")
        self.output_dropout = keras.layers.Dropout(config.hidden_dropout)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.intermediate_dense.build((None, None, self.config.hidden_size))
        self.output_dense.build((None, None, self.config.intermediate_size))

    def call(self, hidden_states: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden_states = self.intermediate_dropout(self.intermediate_act_fn(self.intermediate_dense(hidden_states)), training=training)
        return self.output_dropout(self.output_dense(hidden_states), training=training)


class TFWav2Vec2AttnAdapterLayer(keras.layers.Layer):
    """A bottleneck adapter added after each stable-layer-norm layer (``adapter_attn_dim``)."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        init = get_initializer(config.initializer_range)
        self.norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="norm")
        self.linear_1 = keras.layers.Dense(config.adapter_attn_dim, kernel_initializer=init, name="linear_1")
        self.linear_2 = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="linear_2")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.norm.build((None, None, self.config.hidden_size))
        self.linear_1.build((None, None, self.config.hidden_size))
        self.linear_2.build((None, None, self.config.adapter_attn_dim))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.linear_2(tf.nn.relu(self.linear_1(self.norm(hidden_states))))


class TFWav2Vec2EncoderLayer(keras.layers.Layer):
    """Post-LayerNorm block (attention, add, norm, feed-forward, add, norm), or pre-LayerNorm when ``stable``."""

    def __init__(self, config: Wav2Vec2Config, stable: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.stable = stable
        self.attention = TFWav2Vec2Attention(config, name="attention")
        self.dropout = keras.layers.Dropout(config.hidden_dropout)
        self.layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm")
        self.feed_forward = TFWav2Vec2FeedForward(config, name="feed_forward")
        self.final_layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="final_layer_norm")
        use_adapter = stable and getattr(config, "adapter_attn_dim", None) is not None
        self.adapter_layer = TFWav2Vec2AttnAdapterLayer(config, name="adapter_layer") if use_adapter else None

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.attention.build(None)
        self.layer_norm.build((None, None, self.config.hidden_size))
        self.feed_forward.build(None)
        self.final_layer_norm.build((None, None, self.config.hidden_size))
        if self.adapter_layer is not None:
            self.adapter_layer.build(None)

    def call(self, hidden_states: tf.Tensor, attention_mask: tf.Tensor | None = None, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        if not self.stable:
            attn, probs = self.attention(hidden_states, attention_mask, training=training)
            hidden_states = self.layer_norm(hidden_states + self.dropout(attn, training=training))
            hidden_states = self.final_layer_norm(hidden_states + self.feed_forward(hidden_states, training=training))
            return hidden_states, probs
        attn, probs = self.attention(self.layer_norm(hidden_states), attention_mask, training=training)
        hidden_states = hidden_states + self.dropout(attn, training=training)
        hidden_states = hidden_states + self.feed_forward(self.final_layer_norm(hidden_states), training=training)
        if self.adapter_layer is not None:
            hidden_states = hidden_states + self.adapter_layer(hidden_states)
        return hidden_states, probs


class TFWav2Vec2Encoder(keras.layers.Layer):
    """Positional conv, then the layers; post-LayerNorm, or pre-LayerNorm when ``stable``."""

    def __init__(self, config: Wav2Vec2Config, stable: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.stable = stable
        self.pos_conv_embed = TFWav2Vec2PositionalConvEmbedding(config, name="pos_conv_embed")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout)
        self.layer = [TFWav2Vec2EncoderLayer(config, stable, name=f"layers.{i}") for i in range(config.num_hidden_layers)]

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.pos_conv_embed.build(None)
        self.layer_norm.build((None, None, self.config.hidden_size))
        for layer in self.layer:
            layer.build(None)

    def call(
        self, hidden_states: tf.Tensor, attention_mask: tf.Tensor | None = None, output_attentions: bool = False,
        output_hidden_states: bool = False, training: bool = False,
    ) -> tuple[tf.Tensor, tuple | None, tuple | None]:
        additive_mask = None
        if attention_mask is not None:  # (B, T) boolean, True for real frames
            mask = tf.cast(attention_mask, hidden_states.dtype)
            hidden_states = hidden_states * mask[:, :, None]  # padded frames are zero
            additive_mask = ((1.0 - mask) * hidden_states.dtype.min)[:, None, None, :]  # (B, 1, 1, T): padded keys dropped
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.stable:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states, training=training)

        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layer:
            if training and self.config.layerdrop > 0.0 and np.random.uniform() < self.config.layerdrop:
                continue  # LayerDrop
            hidden_states, probs = layer(hidden_states, additive_mask, training=training)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        if self.stable:
            hidden_states = self.layer_norm(hidden_states)
        return hidden_states, all_hidden, all_attentions


class TFWav2Vec2AdapterLayer(keras.layers.Layer):
    """A strided conv (padding 1) whose GLU halves the channels back: (B, T, C) -> (B, T', C)."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.channels = config.output_hidden_size
        self.conv = keras.layers.Conv1D(2 * self.channels, config.adapter_kernel_size, strides=config.adapter_stride, kernel_initializer="he_normal", name="conv")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.conv.build((None, None, self.channels))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        hidden_states = self.conv(tf.pad(hidden_states, ((0, 0), (1, 1), (0, 0))))  # (B, T', 2C)
        value, gate = tf.split(hidden_states, 2, axis=-1)
        return value * tf.sigmoid(gate)


class TFWav2Vec2Adapter(keras.layers.Layer):
    """Strided GLU convolutions that shorten the encoder output (``add_adapter``)."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        if config.output_hidden_size != config.hidden_size:
            self.proj = keras.layers.Dense(config.output_hidden_size, kernel_initializer=get_initializer(config.initializer_range), name="proj")
            self.proj_layer_norm = keras.layers.LayerNormalization(epsilon=TORCH_NORM_EPS, name="proj_layer_norm")
        else:
            self.proj = self.proj_layer_norm = None
        self.adapter_layers = [TFWav2Vec2AdapterLayer(config, name=f"layers.{i}") for i in range(config.num_adapter_layers)]

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        if self.proj is not None:
            self.proj.build((None, None, self.config.hidden_size))
            self.proj_layer_norm.build((None, None, self.config.output_hidden_size))
        for layer in self.adapter_layers:
            layer.build(None)

    def call(self, hidden_states: tf.Tensor, training: bool = False) -> tf.Tensor:
        if self.proj is not None:
            hidden_states = self.proj_layer_norm(self.proj(hidden_states))
        for layer in self.adapter_layers:
            if not training or np.random.random() > self.config.layerdrop:
                hidden_states = layer(hidden_states)
        return hidden_states


# --- the backbone ----------------------------------------------------------------------------------------


def _feature_vector_mask(config: Wav2Vec2Config, num_frames: int | tf.Tensor, attention_mask: tf.Tensor, add_adapter: bool | None = None) -> tf.Tensor:
    """The sample-level mask (B, L) as a frame-level boolean mask (B, T): frames before each row's length."""
    lengths = tf.reduce_sum(tf.cast(attention_mask, tf.int32), axis=-1)
    return tf.sequence_mask(conv_output_lengths(config, lengths, add_adapter), maxlen=num_frames)


class TFWav2Vec2MainLayer(keras.layers.Layer):
    """Raw audio (B, L) to hidden states (B, T, C); every model keeps it under the name ``wav2vec2``."""

    def __init__(self, config: Wav2Vec2Config, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.feature_extractor = TFWav2Vec2FeatureEncoder(config, name="feature_extractor")
        self.feature_projection = TFWav2Vec2FeatureProjection(config, name="feature_projection")
        self.encoder = TFWav2Vec2Encoder(config, stable=config.do_stable_layer_norm, name="encoder")
        self.adapter = TFWav2Vec2Adapter(config, name="adapter") if config.add_adapter else None
        self.has_masked_spec_embed = config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        if self.has_masked_spec_embed:
            self.masked_spec_embed = self.add_weight(shape=(self.config.hidden_size,), initializer="uniform", name="masked_spec_embed")
        self.feature_extractor.build(None)
        self.feature_projection.build(None)
        self.encoder.build(None)
        if self.adapter is not None:
            self.adapter.build(None)

    def _mask_hidden_states(self, hidden_states: tf.Tensor, mask_time_indices: Any, frame_mask: tf.Tensor | None, training: bool) -> tf.Tensor:
        """SpecAugment: given time indices always, random time/feature masks in training only (as PyTorch)."""
        config = self.config
        if not getattr(config, "apply_spec_augment", True):
            return hidden_states
        if (mask_time_indices is not None or training) and not self.has_masked_spec_embed:
            if mask_time_indices is None:
                return hidden_states
            raise ValueError("mask_time_indices needs the model's masked_spec_embed, which exists only with config.mask_time_prob > 0 or mask_feature_prob > 0.")
        B, T, C = shape_list(hidden_states)
        embed = tf.cast(self.masked_spec_embed, hidden_states.dtype)[None, None, :]
        if mask_time_indices is None and training and config.mask_time_prob > 0:
            lengths = None if frame_mask is None else tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=-1)

            def time_mask(lengths_or_none: Any) -> np.ndarray:
                return compute_mask_indices((B, T), config.mask_time_prob, config.mask_time_length, lengths_or_none, config.mask_time_min_masks)

            if tf.executing_eagerly():
                mask_time_indices = time_mask(None if lengths is None else lengths.numpy())
            else:
                args = [] if lengths is None else [lengths]
                mask_time_indices = tf.numpy_function(lambda *a: time_mask(a[0] if a else None), args, tf.bool)
                mask_time_indices = tf.reshape(mask_time_indices, (B, T))  # numpy_function forgets the shape
        if mask_time_indices is not None:
            mask_time_indices = tf.convert_to_tensor(mask_time_indices)
            if mask_time_indices.shape.rank != 2:
                raise ValueError(f"mask_time_indices must be (batch, frames), got shape {tuple(mask_time_indices.shape)}.")
            hidden_states = tf.where(tf.cast(mask_time_indices, tf.bool)[:, :, None], embed, hidden_states)
        if training and config.mask_feature_prob > 0:

            def feature_mask() -> np.ndarray:
                return compute_mask_indices((B, C), config.mask_feature_prob, config.mask_feature_length, min_masks=config.mask_feature_min_masks)

            indices = feature_mask() if tf.executing_eagerly() else tf.reshape(tf.numpy_function(feature_mask, [], tf.bool), (B, C))
            hidden_states = tf.where(tf.convert_to_tensor(indices)[:, None, :], tf.zeros_like(hidden_states), hidden_states)
        return hidden_states

    def call(
        self, input_values: tf.Tensor, attention_mask: tf.Tensor | None = None, mask_time_indices: Any = None,
        output_attentions: bool | None = None, output_hidden_states: bool | None = None, return_dict: bool | None = None,
        training: bool = False,
    ) -> TFWav2Vec2BaseModelOutput | tuple:
        config = self.config
        if input_values is None:
            raise ValueError("Pass input_values: raw audio shaped (batch, samples).")
        input_values = tf.convert_to_tensor(input_values)
        if input_values.shape.rank != 2:
            raise ValueError(
                f"input_values must be (batch, samples), got shape {tuple(input_values.shape)}; "
                "add a batch axis with input_values[None] or mix stereo down to mono."
            )
        output_attentions = bool(output_attentions if output_attentions is not None else config.output_attentions)
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None else config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else config.use_return_dict

        extract_features = self.feature_extractor(tf.cast(input_values, self.compute_dtype))  # (B, T, C_conv)
        frame_mask = None
        if attention_mask is not None:
            frame_mask = _feature_vector_mask(config, shape_list(extract_features)[1], attention_mask, add_adapter=False)
        hidden_states, extract_features = self.feature_projection(extract_features, training=training)
        hidden_states = self._mask_hidden_states(hidden_states, mask_time_indices, frame_mask, training)
        hidden_states, all_hidden, all_attentions = self.encoder(
            hidden_states, frame_mask, output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training
        )
        if self.adapter is not None:
            hidden_states = self.adapter(hidden_states, training=training)
        output = tf_output_class(TFWav2Vec2BaseModelOutput)(
            last_hidden_state=hidden_states, extract_features=extract_features, hidden_states=all_hidden, attentions=all_attentions
        )
        return output if return_dict else output.to_tuple()


# --- models ------------------------------------------------------------------------------------


def _finish(output: ModelOutput, return_dict: bool | None, config: Wav2Vec2Config) -> ModelOutput | tuple:
    return_dict = return_dict if return_dict is not None else config.use_return_dict
    return output if return_dict else output.to_tuple()


class TFWav2Vec2PreTrainedModel(TFPreTrainedModel):
    config_class = Wav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"

    @property
    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        """Half a second of noise at 16 kHz, enough frames for every conv."""
        return {"input_values": tf.random.uniform((1, 16000), dtype=tf.float32)}

    def _get_feat_extract_output_lengths(self, input_lengths: Any, add_adapter: bool | None = None) -> Any:
        return conv_output_lengths(self.config, input_lengths, add_adapter)

    def _get_feature_vector_attention_mask(self, feature_vector_length: int | tf.Tensor, attention_mask: tf.Tensor, add_adapter: bool | None = None) -> tf.Tensor:
        return _feature_vector_mask(self.config, feature_vector_length, attention_mask, add_adapter)

    def freeze_feature_encoder(self) -> None:
        """Stop training the conv feature encoder (fine-tuning usually does)."""
        self.wav2vec2.feature_extractor.trainable = False

    def _initial_value(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        leaf = name.rsplit("/", 1)[-1].removesuffix(":0")
        if leaf == "weight_v":  # zeros would make the weight-normed kernel 0 / 0
            return keras.initializers.RandomNormal(stddev=2 * math.sqrt(1 / (shape[2] * shape[0])))(shape, dtype=dtype)
        if leaf in ("weight_g",):
            return keras.ops.ones(shape, dtype=dtype)
        if leaf == "layer_weights":
            return keras.ops.ones(shape, dtype=dtype) / shape[0]
        if leaf == "masked_spec_embed":
            return keras.initializers.RandomUniform(0.0, 1.0)(shape, dtype=dtype)
        return super()._initial_value(name, shape, dtype)


class TFWav2Vec2Model(TFWav2Vec2PreTrainedModel):
    """The backbone: raw audio (B, L) to hidden states (B, T, C)."""

    def __init__(self, config: Wav2Vec2Config, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        self.wav2vec2 = TFWav2Vec2MainLayer(config, name="wav2vec2")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.wav2vec2.build(None)

    @unpack_inputs
    def call(
        self, input_values=None, attention_mask=None, mask_time_indices=None, output_attentions=None,
        output_hidden_states=None, return_dict=None, training=False,
    ):
        return self.wav2vec2(
            input_values, attention_mask=attention_mask, mask_time_indices=mask_time_indices, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, training=training,
        )


def _ctc_loss(config: Wav2Vec2Config, logits: tf.Tensor, labels: tf.Tensor, input_lengths: tf.Tensor) -> tf.Tensor:
    """CTC as PyTorch's ``ctc_loss``: blank ``pad_token_id``, labels < 0 dropped, ``ctc_loss_reduction`` and ``ctc_zero_infinity``.

    ``"sum"`` and ``"mean"`` give shape (1,) as Transformers' TensorFlow model; ``"none"`` one loss per example.
    """
    labels = tf.cast(labels, tf.int32)
    labels_mask = labels >= 0  # -100 marks padding
    target_lengths = tf.reduce_sum(tf.cast(labels_mask, tf.int32), axis=-1)
    # The kept labels moved left (a stable sort puts them first), as PyTorch's masked_select
    # concatenates them: then -100 may sit anywhere, and the dense form keeps XLA's shapes static.
    order = tf.argsort(tf.cast(~labels_mask, tf.int32), axis=-1, stable=True)
    dense_labels = tf.gather(labels, order, batch_dims=1)
    valid = tf.range(shape_list(labels)[1])[None, :] < target_lengths[:, None]
    dense_labels = tf.where(valid, dense_labels, 0)
    losses = tf.nn.ctc_loss(
        labels=dense_labels, logits=tf.cast(logits, tf.float32), label_length=target_lengths, logit_length=tf.cast(input_lengths, tf.int32),
        logits_time_major=False, blank_index=config.pad_token_id,
    )  # (B,)
    # TensorFlow's dense CTC gives a large finite loss where no alignment exists; PyTorch gives inf
    # (or 0 with zero_infinity). An alignment needs a frame per label plus a blank between repeats.
    repeats = tf.reduce_sum(tf.cast((dense_labels[:, 1:] == dense_labels[:, :-1]) & valid[:, 1:], tf.int32), axis=-1)
    impossible = tf.cast(input_lengths, tf.int32) < target_lengths + repeats
    fill = 0.0 if config.ctc_zero_infinity else float("inf")
    losses = tf.where(impossible | tf.math.is_inf(losses), tf.fill(tf.shape(losses), fill), losses)
    reduction = config.ctc_loss_reduction
    if reduction == "sum":
        return tf.reshape(tf.reduce_sum(losses), (1,))
    if reduction == "mean":
        per_target = losses / tf.cast(tf.maximum(target_lengths, 1), losses.dtype)
        return tf.reshape(tf.reduce_mean(per_target), (1,))
    if reduction == "none":
        return losses
    raise ValueError(f"config.ctc_loss_reduction must be 'sum', 'mean' or 'none', got {reduction!r}.")


class TFWav2Vec2ForCTC(TFWav2Vec2PreTrainedModel):
    """The backbone and a linear layer giving per-frame token logits, trained with CTC."""

    def __init__(self, config: Wav2Vec2Config, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        if config.vocab_size is None:
            raise ValueError(
                "TFWav2Vec2ForCTC needs config.vocab_size (the number of CTC tokens), got None; "
                "set it to the size of the tokenizer's vocabulary."
            )
        self.wav2vec2 = TFWav2Vec2MainLayer(config, name="wav2vec2")
        self.dropout = keras.layers.Dropout(config.final_dropout)
        self.output_hidden_size = config.output_hidden_size if config.add_adapter else config.hidden_size
        self.lm_head = keras.layers.Dense(config.vocab_size, kernel_initializer=get_initializer(config.initializer_range), name="lm_head")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.wav2vec2.build(None)
        self.lm_head.build((None, None, self.output_hidden_size))

    def freeze_feature_extractor(self) -> None:
        """Transformers' deprecated name for :meth:`freeze_feature_encoder`."""
        self.freeze_feature_encoder()

    @unpack_inputs
    def call(
        self, input_values=None, attention_mask=None, output_attentions=None, output_hidden_states=None,
        return_dict=None, labels=None, training=False,
    ):
        """``labels``: (B, S) token ids, -100 where a row is shorter than S."""
        config = self.config
        if labels is not None:
            labels = tf.convert_to_tensor(labels)
            if tf.executing_eagerly() and tf.size(labels) > 0 and int(tf.reduce_max(labels)) >= config.vocab_size:
                raise ValueError(f"CTC labels must be below vocab_size ({config.vocab_size}), got {int(tf.reduce_max(labels))}.")
        outputs = self.wav2vec2(
            input_values, attention_mask=attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        logits = self.lm_head(self.dropout(outputs.last_hidden_state, training=training))  # (B, T, V)
        loss = None
        if labels is not None:
            if attention_mask is None:
                attention_mask = tf.ones(shape_list(input_values), dtype=tf.int32)
            input_lengths = self._get_feat_extract_output_lengths(tf.reduce_sum(tf.cast(attention_mask, tf.int32), axis=-1))
            loss = _ctc_loss(config, logits, labels, input_lengths)
        output = tf_output_class(TFCausalLMOutput)(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return _finish(output, return_dict, config)


class TFWav2Vec2ForSequenceClassification(TFWav2Vec2PreTrainedModel):
    """Mean-pooled projection of the frames, then a linear classifier (keyword spotting, emotion...).

    With ``use_weighted_layer_sum`` the frames are a softmax-weighted sum of every hidden state
    (``layer_weights``) instead of the last one.
    """

    def __init__(self, config: Wav2Vec2Config, *inputs: Any, **kwargs: Any):
        super().__init__(config, *inputs, **kwargs)
        if getattr(config, "add_adapter", False):
            raise ValueError("Sequence classification does not support the use of Wav2Vec2 adapters (config.add_adapter=True); set it to False.")
        self.wav2vec2 = TFWav2Vec2MainLayer(config, name="wav2vec2")
        self.num_layers = config.num_hidden_layers + 1  # the encoder input and every layer
        init = get_initializer(config.initializer_range)
        self.projector = keras.layers.Dense(config.classifier_proj_size, kernel_initializer=init, name="projector")
        self.classifier = keras.layers.Dense(config.num_labels, kernel_initializer=init, name="classifier")

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        if self.config.use_weighted_layer_sum:
            initial = keras.initializers.Constant(1.0 / self.num_layers)
            self.layer_weights = self.add_weight(shape=(self.num_layers,), initializer=initial, name="layer_weights")
        self.wav2vec2.build(None)
        self.projector.build((None, None, self.config.hidden_size))
        self.classifier.build((None, self.config.classifier_proj_size))

    def freeze_base_model(self) -> None:
        self.wav2vec2.trainable = False

    @unpack_inputs
    def call(
        self, input_values=None, attention_mask=None, output_attentions=None, output_hidden_states=None,
        return_dict=None, labels=None, training=False,
    ):
        config = self.config
        if config.use_weighted_layer_sum:
            output_hidden_states = True
        outputs = self.wav2vec2(
            input_values, attention_mask=attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training,
        )
        if config.use_weighted_layer_sum:
            hidden_states = tf.stack(outputs.hidden_states, axis=1)  # (B, layers + 1, T, C)
            weights = tf.nn.softmax(self.layer_weights, axis=-1)
            hidden_states = tf.reduce_sum(hidden_states * tf.reshape(weights, (-1, 1, 1)), axis=1)
        else:
            hidden_states = outputs.last_hidden_state
        hidden_states = self.projector(hidden_states)  # (B, T, P)
        if attention_mask is None:
            pooled = tf.reduce_mean(hidden_states, axis=1)
        else:
            padding_mask = tf.cast(self._get_feature_vector_attention_mask(shape_list(hidden_states)[1], attention_mask), hidden_states.dtype)
            pooled = tf.reduce_sum(hidden_states * padding_mask[:, :, None], axis=1) / tf.reduce_sum(padding_mask, axis=1, keepdims=True)
        logits = self.classifier(pooled)  # (B, num_labels)
        loss = None
        if labels is not None:  # the mean over examples (labelled -100 ones ignored), a scalar as in Transformers
            loss = tf.reshape(masked_mean_cross_entropy(tf.reshape(labels, (-1,)), logits), ())
        output = tf_output_class(SequenceClassifierOutput)(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return _finish(output, return_dict, config)


__all__ = [
    "TFWav2Vec2Model",
    "TFWav2Vec2ForCTC",
    "TFWav2Vec2ForSequenceClassification",
    "TFWav2Vec2PreTrainedModel",
    "TFWav2Vec2MainLayer",
    "TFWav2Vec2BaseModelOutput",
]
