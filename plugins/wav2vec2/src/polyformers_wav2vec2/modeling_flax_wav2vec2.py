"""Wav2Vec2 in JAX/Flax (linen): the conv feature encoder, the Transformer encoder, then the model and its heads.

Parameter names and nesting are the checkpoint format shared with Transformers' Flax Wav2Vec2
(4.x), so ``flax_model.msgpack`` files interchange, and after
:func:`polyformers.conversion.flax_key_to_pt` they are our PyTorch model's names. The weight-normed
positional convolution stores ``weight_v`` in PyTorch's layout (out, in / groups, k) and
``weight_g`` as (1, 1, k), as Transformers' Flax does; PyTorch checkpoints with the newer names
(``parametrizations.weight.original0/1``) are renamed to those on loading.

Beyond Transformers' Flax Wav2Vec2, which only has ``feat_extract_norm="layer"`` with
``do_stable_layer_norm=True``, this one runs every variant our PyTorch model runs: GroupNorm or
LayerNorm feature encoders, post- and pre-LayerNorm encoders, attention adapters, the conv
adapter, and sequence classification (weighted layer sum, masked mean pooling). Numerics follow
our PyTorch model: exact erf GELU, two-pass variance in LayerNorm and GroupNorm (Flax's fast
variance loses precision on rows with a large mean), epsilon 1e-5 in the feature encoder and
adapter norms (PyTorch's default) and ``config.layer_norm_eps`` elsewhere.

Hidden states follow Transformers 5.x PyTorch (our PyTorch model): the input of the first encoder
layer, then each layer's output; with ``do_stable_layer_norm`` the last one is *before* the final
LayerNorm. Transformers 4.x Flax puts the normalised state last instead.

Not here (as in Transformers' Flax): random SpecAugment masking in training (pass
``mask_time_indices`` to mask frames with ``masked_spec_embed``) and LayerDrop of adapter layers.
Encoder LayerDrop is applied in training by passing a dropped layer's input through (its hidden
state and attentions are still returned, so that shapes stay static under ``jax.jit``).

Shapes: B batch, L audio samples, T frames, C hidden size, H heads, D head size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

from polyformers.activations_flax import ACT2FN
from polyformers.modeling_flax_utils import FlaxPreTrainedModel, register_model_output
from polyformers.modeling_outputs import ModelOutput, SequenceClassifierOutput

from ._common import conv_output_lengths
from .configuration_wav2vec2 import Wav2Vec2Config

# PyTorch's nn.LayerNorm / nn.GroupNorm default, used by the feature encoder and adapter norms.
TORCH_NORM_EPS = 1e-5


# --- outputs -----------------------------------------------------------------------------------------


@register_model_output
@dataclass(repr=False)
class FlaxWav2Vec2BaseModelOutput(ModelOutput):
    last_hidden_state: Any = None
    extract_features: Any = None
    hidden_states: Any = None
    attentions: Any = None


@register_model_output
@dataclass(repr=False)
class FlaxCausalLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


# --- helpers -----------------------------------------------------------------------------------------


def _dense(features: int, config: Wav2Vec2Config, dtype: Any) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, kernel_init=jax.nn.initializers.normal(config.initializer_range))


def _layer_norm(epsilon: float, dtype: Any) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=epsilon, use_fast_variance=False, dtype=dtype)


def feature_vector_attention_mask(config: Wav2Vec2Config, num_frames: int, attention_mask: jax.Array, add_adapter: bool | None = None) -> jax.Array:
    """The sample-level mask (B, L) as a frame-level boolean mask (B, T): frames before each row's length."""
    lengths = conv_output_lengths(config, attention_mask.sum(-1), add_adapter)
    return jnp.arange(num_frames)[None, :] < lengths[:, None]


def _finish(output: ModelOutput, return_dict: bool) -> ModelOutput | tuple:
    return output if return_dict else output.to_tuple()


# --- feature encoder ---------------------------------------------------------------------------------


class FlaxWav2Vec2ConvLayer(nn.Module):
    """Conv, then (``norm``) LayerNorm over channels, GroupNorm with a group per channel, or nothing; activation."""

    config: Wav2Vec2Config
    layer_id: int = 0
    norm: str = "none"  # "layer", "group" or "none"
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config, i = self.config, self.layer_id
        self.conv = nn.Conv(
            features=config.conv_dim[i],
            kernel_size=(config.conv_kernel[i],),
            strides=(config.conv_stride[i],),
            padding="VALID",
            use_bias=config.conv_bias,
            kernel_init=jax.nn.initializers.he_normal(),
            dtype=self.dtype,
        )
        if self.norm == "layer":
            self.layer_norm = _layer_norm(TORCH_NORM_EPS, self.dtype)
        elif self.norm == "group":
            # One group per channel: each channel is normalised over time.
            self.layer_norm = nn.GroupNorm(num_groups=config.conv_dim[i], epsilon=TORCH_NORM_EPS, use_fast_variance=False, dtype=self.dtype)
        self.activation = ACT2FN[config.feat_extract_activation]

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        hidden_states = self.conv(hidden_states)  # (B, T, C_conv)
        if self.norm != "none":
            hidden_states = self.layer_norm(hidden_states)
        return self.activation(hidden_states)


class FlaxWav2Vec2ConvLayersCollection(nn.Module):
    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        if config.feat_extract_norm == "group":  # GroupNorm on the first layer only
            norms = ["group"] + ["none"] * (config.num_feat_extract_layers - 1)
        else:
            norms = ["layer"] * config.num_feat_extract_layers
        self.layers = [FlaxWav2Vec2ConvLayer(config, i, norm, dtype=self.dtype, name=str(i)) for i, norm in enumerate(norms)]

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class FlaxWav2Vec2FeatureEncoder(nn.Module):
    """Raw audio (B, L) to frames (B, T, C_conv) through the conv stack."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.conv_layers = FlaxWav2Vec2ConvLayersCollection(self.config, dtype=self.dtype)

    def __call__(self, input_values: jax.Array, freeze_feature_encoder: bool = False) -> jax.Array:
        hidden_states = self.conv_layers(input_values[:, :, None])  # (B, L, 1) -> (B, T, C_conv)
        return lax.stop_gradient(hidden_states) if freeze_feature_encoder else hidden_states


class FlaxWav2Vec2FeatureProjection(nn.Module):
    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.layer_norm = _layer_norm(self.config.layer_norm_eps, self.dtype)
        self.projection = _dense(self.config.hidden_size, self.config, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.feat_proj_dropout)

    def __call__(self, hidden_states: jax.Array, deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
        normed = self.layer_norm(hidden_states)  # also returned: the extract_features output
        return self.dropout(self.projection(normed), deterministic=deterministic), normed


class FlaxConvWithWeightNorm(nn.Module):
    """A grouped conv over time whose kernel is ``weight_g * weight_v / ||weight_v||`` (norm over all but the kernel axis)."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        channels, groups, kernel = config.hidden_size, config.num_conv_pos_embedding_groups, config.num_conv_pos_embeddings
        if channels % groups:
            raise ValueError(
                f"hidden_size ({channels}) must be a multiple of num_conv_pos_embedding_groups ({groups}); change one of them in the config."
            )
        std = 2 * math.sqrt(1 / (kernel * channels))  # PyTorch's initialisation
        # PyTorch's layout (out, in / groups, k), as Transformers' Flax stores it.
        self.weight_v = self.param("weight_v", jax.nn.initializers.normal(std), (channels, channels // groups, kernel))
        self.weight_g = self.param("weight_g", lambda _: jnp.linalg.norm(self.weight_v, axis=(0, 1))[None, None, :])
        self.bias = self.param("bias", jax.nn.initializers.zeros, (channels,))

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        kernel = self.weight_v / jnp.linalg.norm(self.weight_v, axis=(0, 1), keepdims=True) * self.weight_g  # (C, C/G, K)
        padding = self.config.num_conv_pos_embeddings // 2
        hidden_states = lax.conv_general_dilated(
            hidden_states.astype(self.dtype),
            jnp.transpose(kernel, (2, 1, 0)).astype(self.dtype),  # (K, C/G, C)
            window_strides=(1,),
            padding=[(padding, padding)],
            dimension_numbers=("NWC", "WIO", "NWC"),
            feature_group_count=self.config.num_conv_pos_embedding_groups,
        )
        return hidden_states + self.bias.astype(self.dtype)


class FlaxWav2Vec2PositionalConvEmbedding(nn.Module):
    """Relative positions from the weight-normed grouped convolution, then the activation."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.conv = FlaxConvWithWeightNorm(self.config, dtype=self.dtype)
        self.activation = ACT2FN[self.config.feat_extract_activation]

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        hidden_states = self.conv(hidden_states)  # (B, T + pad, C)
        if self.config.num_conv_pos_embeddings % 2 == 0:  # an even kernel with padding k // 2 gives one frame too many
            hidden_states = hidden_states[:, :-1]
        return self.activation(hidden_states)


# --- Transformer encoder ------------------------------------------------------------------------------


class FlaxWav2Vec2Attention(nn.Module):
    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        if self.head_dim * self.num_heads != config.hidden_size:
            raise ValueError(
                f"hidden_size ({config.hidden_size}) must be a multiple of num_attention_heads ({self.num_heads}); change one of them in the config."
            )
        self.q_proj = _dense(config.hidden_size, config, self.dtype)
        self.k_proj = _dense(config.hidden_size, config, self.dtype)
        self.v_proj = _dense(config.hidden_size, config, self.dtype)
        self.out_proj = _dense(config.hidden_size, config, self.dtype)
        self.dropout = nn.Dropout(rate=config.attention_dropout)

    def __call__(
        self, hidden_states: jax.Array, attention_bias: jax.Array | None, deterministic: bool = True, output_attentions: bool = False
    ) -> tuple[jax.Array, jax.Array | None]:
        B, T, C = hidden_states.shape

        def split(x: jax.Array) -> jax.Array:
            return x.reshape(B, T, self.num_heads, self.head_dim)  # (B, T, H, D)

        query, key, value = split(self.q_proj(hidden_states)), split(self.k_proj(hidden_states)), split(self.v_proj(hidden_states))
        scores = jnp.einsum("bqhd,bkhd->bhqk", query, key) * (self.head_dim**-0.5)  # (B, H, T, T)
        if attention_bias is not None:
            scores = scores + attention_bias.astype(scores.dtype)
        probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(self.dtype)
        context = jnp.einsum("bhqk,bkhd->bqhd", self.dropout(probs, deterministic=deterministic), value).reshape(B, T, C)
        return self.out_proj(context), probs if output_attentions else None


class FlaxWav2Vec2FeedForward(nn.Module):
    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.intermediate_dropout = nn.Dropout(rate=config.activation_dropout)
        self.intermediate_dense = _dense(config.intermediate_size, config, self.dtype)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]
        self.output_dense = _dense(config.hidden_size, config, self.dtype)
        self.output_dropout = nn.Dropout(rate=config.hidden_dropout)

    def __call__(self, hidden_states: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.intermediate_act_fn(self.intermediate_dense(hidden_states))
        hidden_states = self.output_dense(self.intermediate_dropout(hidden_states, deterministic=deterministic))
        return self.output_dropout(hidden_states, deterministic=deterministic)


class FlaxWav2Vec2AttnAdapterLayer(nn.Module):
    """A bottleneck adapter after each pre-LayerNorm layer (``adapter_attn_dim``)."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.norm = _layer_norm(TORCH_NORM_EPS, self.dtype)
        self.linear_1 = _dense(self.config.adapter_attn_dim, self.config, self.dtype)
        self.linear_2 = _dense(self.config.hidden_size, self.config, self.dtype)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.linear_2(jax.nn.relu(self.linear_1(self.norm(hidden_states))))


class FlaxWav2Vec2EncoderLayer(nn.Module):
    """Post-LayerNorm block (``stable=False``): attention, add, norm, feed-forward, add, norm.
    Pre-LayerNorm block (``stable=True``): norm, attention, add, norm, feed-forward, add (+ adapter)."""

    config: Wav2Vec2Config
    stable: bool = False
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.attention = FlaxWav2Vec2Attention(config, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.hidden_dropout)
        self.layer_norm = _layer_norm(config.layer_norm_eps, self.dtype)
        self.feed_forward = FlaxWav2Vec2FeedForward(config, dtype=self.dtype)
        self.final_layer_norm = _layer_norm(config.layer_norm_eps, self.dtype)
        if self.stable and config.adapter_attn_dim is not None:
            self.adapter_layer = FlaxWav2Vec2AttnAdapterLayer(config, dtype=self.dtype)

    def __call__(
        self, hidden_states: jax.Array, attention_bias: jax.Array | None, deterministic: bool = True, output_attentions: bool = False
    ) -> tuple[jax.Array, jax.Array | None]:
        if not self.stable:
            attn, probs = self.attention(hidden_states, attention_bias, deterministic, output_attentions)
            hidden_states = self.layer_norm(hidden_states + self.dropout(attn, deterministic=deterministic))
            hidden_states = self.final_layer_norm(hidden_states + self.feed_forward(hidden_states, deterministic))
            return hidden_states, probs
        attn, probs = self.attention(self.layer_norm(hidden_states), attention_bias, deterministic, output_attentions)
        hidden_states = hidden_states + self.dropout(attn, deterministic=deterministic)
        hidden_states = hidden_states + self.feed_forward(self.final_layer_norm(hidden_states), deterministic)
        if self.config.adapter_attn_dim is not None:
            hidden_states = hidden_states + self.adapter_layer(hidden_states)
        return hidden_states, probs


class FlaxWav2Vec2EncoderLayerCollection(nn.Module):
    """The layers, collecting hidden states (input of each layer, then the last output) and attentions."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        stable = self.config.do_stable_layer_norm
        self.layers = [FlaxWav2Vec2EncoderLayer(self.config, stable, dtype=self.dtype, name=str(i)) for i in range(self.config.num_hidden_layers)]

    def __call__(self, hidden_states, attention_bias, deterministic=True, output_attentions=False, output_hidden_states=False):
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        layerdrop = self.config.layerdrop if not deterministic else 0.0
        for layer in self.layers:
            layer_output, probs = layer(hidden_states, attention_bias, deterministic, output_attentions)
            if layerdrop > 0.0:  # LayerDrop: a dropped layer passes its input through
                keep = jax.random.uniform(self.make_rng("dropout")) >= layerdrop
                layer_output = jnp.where(keep, layer_output, hidden_states)
            hidden_states = layer_output
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        return hidden_states, all_hidden, all_attentions


class FlaxWav2Vec2Encoder(nn.Module):
    """Positional conv, then the layers; the LayerNorm before them, or (``do_stable_layer_norm``) after."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.pos_conv_embed = FlaxWav2Vec2PositionalConvEmbedding(self.config, dtype=self.dtype)
        self.layer_norm = _layer_norm(self.config.layer_norm_eps, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout)
        self.layers = FlaxWav2Vec2EncoderLayerCollection(self.config, dtype=self.dtype)

    def __call__(self, hidden_states, frame_mask=None, deterministic=True, output_attentions=False, output_hidden_states=False):
        attention_bias = None
        if frame_mask is not None:
            hidden_states = jnp.where(frame_mask[..., None], hidden_states, 0.0)  # padded frames are zero
            big_negative = jnp.finfo(self.dtype).min
            attention_bias = jnp.where(frame_mask, 0.0, big_negative).astype(self.dtype)[:, None, None, :]  # (B, 1, 1, T): padded keys dropped
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.config.do_stable_layer_norm:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states, deterministic=deterministic)
        hidden_states, all_hidden, all_attentions = self.layers(hidden_states, attention_bias, deterministic, output_attentions, output_hidden_states)
        if self.config.do_stable_layer_norm:
            hidden_states = self.layer_norm(hidden_states)
        return hidden_states, all_hidden, all_attentions


class FlaxWav2Vec2AdapterLayer(nn.Module):
    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.conv = nn.Conv(
            features=2 * config.output_hidden_size,
            kernel_size=(config.adapter_kernel_size,),
            strides=(config.adapter_stride,),
            padding=((1, 1),),
            kernel_init=jax.nn.initializers.normal(config.initializer_range),
            dtype=self.dtype,
        )

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return nn.glu(self.conv(hidden_states), axis=-1)


class FlaxWav2Vec2AdapterLayersCollection(nn.Module):
    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.layers = [FlaxWav2Vec2AdapterLayer(self.config, dtype=self.dtype, name=str(i)) for i in range(self.config.num_adapter_layers)]

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class FlaxWav2Vec2Adapter(nn.Module):
    """Strided GLU convolutions that shorten the encoder output (``add_adapter``)."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.project = config.output_hidden_size != config.hidden_size
        if self.project:
            self.proj = _dense(config.output_hidden_size, config, self.dtype)
            self.proj_layer_norm = _layer_norm(TORCH_NORM_EPS, self.dtype)
        self.layers = FlaxWav2Vec2AdapterLayersCollection(config, dtype=self.dtype)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        if self.project:
            hidden_states = self.proj_layer_norm(self.proj(hidden_states))
        return self.layers(hidden_states)


# --- modules: the backbone and the heads ----------------------------------------------------------------


def _has_masked_spec_embed(config: Wav2Vec2Config) -> bool:
    # As our PyTorch model: the embedding exists only for configs that mask in training.
    return config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0


class FlaxWav2Vec2Module(nn.Module):
    """The backbone: raw audio (B, L) to hidden states (B, T, C)."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.feature_extractor = FlaxWav2Vec2FeatureEncoder(config, dtype=self.dtype)
        self.feature_projection = FlaxWav2Vec2FeatureProjection(config, dtype=self.dtype)
        if _has_masked_spec_embed(config):
            self.masked_spec_embed = self.param("masked_spec_embed", jax.nn.initializers.uniform(), (config.hidden_size,))
        self.encoder = FlaxWav2Vec2Encoder(config, dtype=self.dtype)
        if config.add_adapter:
            self.adapter = FlaxWav2Vec2Adapter(config, dtype=self.dtype)

    def __call__(
        self,
        input_values: jax.Array,
        attention_mask: jax.Array | None = None,
        mask_time_indices: jax.Array | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        freeze_feature_encoder: bool = False,
        return_dict: bool = True,
    ) -> FlaxWav2Vec2BaseModelOutput | tuple:
        extract_features = self.feature_extractor(input_values.astype(self.dtype), freeze_feature_encoder)  # (B, T, C_conv)
        frame_mask = None
        if attention_mask is not None:
            frame_mask = feature_vector_attention_mask(self.config, extract_features.shape[1], attention_mask, add_adapter=False)
        hidden_states, extract_features = self.feature_projection(extract_features, deterministic)
        if mask_time_indices is not None and self.config.apply_spec_augment:
            hidden_states = jnp.where(mask_time_indices[..., None], self.masked_spec_embed.astype(hidden_states.dtype), hidden_states)
        hidden_states, all_hidden, all_attentions = self.encoder(hidden_states, frame_mask, deterministic, output_attentions, output_hidden_states)
        if self.config.add_adapter:
            hidden_states = self.adapter(hidden_states)
        output = FlaxWav2Vec2BaseModelOutput(
            last_hidden_state=hidden_states, extract_features=extract_features, hidden_states=all_hidden, attentions=all_attentions
        )
        return _finish(output, return_dict)


class FlaxWav2Vec2ForCTCModule(nn.Module):
    """The backbone and a linear layer giving per-frame token logits."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.wav2vec2 = FlaxWav2Vec2Module(self.config, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=self.config.final_dropout)
        self.lm_head = _dense(self.config.vocab_size, self.config, self.dtype)

    def __call__(
        self,
        input_values,
        attention_mask=None,
        mask_time_indices=None,
        deterministic=True,
        output_attentions=False,
        output_hidden_states=False,
        freeze_feature_encoder=False,
        return_dict=True,
    ) -> FlaxCausalLMOutput | tuple:
        outputs = self.wav2vec2(input_values, attention_mask, mask_time_indices, deterministic, output_attentions, output_hidden_states, freeze_feature_encoder)
        logits = self.lm_head(self.dropout(outputs.last_hidden_state, deterministic=deterministic))  # (B, T, V)
        return _finish(FlaxCausalLMOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions), return_dict)


class FlaxWav2Vec2ForSequenceClassificationModule(nn.Module):
    """Projected frames, mean-pooled over the unpadded ones, then a linear classifier."""

    config: Wav2Vec2Config
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.wav2vec2 = FlaxWav2Vec2Module(config, dtype=self.dtype)
        if config.use_weighted_layer_sum:
            num_layers = config.num_hidden_layers + 1  # the encoder input and every layer
            self.layer_weights = self.param("layer_weights", lambda _: jnp.ones(num_layers) / num_layers)
        self.projector = _dense(config.classifier_proj_size, config, self.dtype)
        self.classifier = _dense(config.num_labels, config, self.dtype)

    def __call__(
        self,
        input_values,
        attention_mask=None,
        mask_time_indices=None,
        deterministic=True,
        output_attentions=False,
        output_hidden_states=False,
        freeze_feature_encoder=False,
        return_dict=True,
    ) -> SequenceClassifierOutput | tuple:
        weighted = self.config.use_weighted_layer_sum
        outputs = self.wav2vec2(
            input_values, attention_mask, mask_time_indices, deterministic, output_attentions, output_hidden_states or weighted, freeze_feature_encoder
        )
        if weighted:
            stacked = jnp.stack(outputs.hidden_states, axis=1)  # (B, layers + 1, T, C)
            weights = jax.nn.softmax(self.layer_weights.astype(jnp.float32)).astype(stacked.dtype)
            hidden_states = (stacked * weights[None, :, None, None]).sum(axis=1)
        else:
            hidden_states = outputs.last_hidden_state
        hidden_states = self.projector(hidden_states)  # (B, T, P)
        if attention_mask is None:
            pooled = hidden_states.mean(axis=1)
        else:
            padding_mask = feature_vector_attention_mask(self.config, hidden_states.shape[1], attention_mask)
            hidden_states = jnp.where(padding_mask[..., None], hidden_states, 0.0)
            pooled = hidden_states.sum(axis=1) / padding_mask.sum(axis=1, keepdims=True).astype(hidden_states.dtype)
        logits = self.classifier(pooled)
        return _finish(SequenceClassifierOutput(logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions), return_dict)


# --- CTC loss ----------------------------------------------------------------------------------------------


def ctc_loss(
    logits: jax.Array,
    logit_lengths: jax.Array,
    labels: jax.Array,
    blank_id: int = 0,
    reduction: str = "sum",
    zero_infinity: bool = False,
) -> jax.Array:
    """CTC loss as PyTorch's ``F.ctc_loss`` on log-softmaxed ``logits`` (B, T, V), through ``optax.ctc_loss``.

    ``logit_lengths`` (B,) are the valid frames per row; ``labels`` (B, S) hold token ids, negative
    (-100) where a row is shorter than S. ``reduction="mean"`` divides each row's loss by its label
    length, then averages, as PyTorch does. optax scores impossible alignments (too few frames for
    the labels and the blanks their repeats need) with a large finite loss; as in PyTorch they
    are infinite here, or zero with ``zero_infinity``.
    """
    import optax

    logits = logits.astype(jnp.float32)
    num_frames = logits.shape[1]
    logit_paddings = (jnp.arange(num_frames)[None, :] >= logit_lengths[:, None]).astype(jnp.float32)
    label_mask = labels >= 0
    # optax takes labels left-aligned with paddings: PyTorch's -100 marks the same positions.
    label_paddings = (~label_mask).astype(jnp.float32)
    losses = optax.ctc_loss(logits, logit_paddings, jnp.where(label_mask, labels, 0), label_paddings, blank_id=blank_id)  # (B,)
    label_lengths = label_mask.sum(-1)
    repeats = (label_mask[:, 1:] & label_mask[:, :-1] & (labels[:, 1:] == labels[:, :-1])).sum(-1)  # each needs a blank between
    feasible = logit_lengths >= label_lengths + repeats
    losses = jnp.where(feasible, losses, 0.0 if zero_infinity else jnp.inf)
    if reduction == "mean":
        return (losses / jnp.maximum(label_lengths, 1)).mean()
    return losses.sum()


# --- the model classes -----------------------------------------------------------------------------------


def _legacy_weight_norm_name(name: str) -> str:
    """PyTorch's parametrization names for the positional conv's weight norm -> the old ``weight_g``/``weight_v``."""
    if name.endswith("pos_conv_embed.conv.parametrizations.weight.original0"):
        return name[: -len("parametrizations.weight.original0")] + "weight_g"
    if name.endswith("pos_conv_embed.conv.parametrizations.weight.original1"):
        return name[: -len("parametrizations.weight.original1")] + "weight_v"
    return name


class FlaxWav2Vec2PreTrainedModel(FlaxPreTrainedModel):
    """Inputs, defaults and checks shared by every Flax Wav2Vec2 model; ``module_class`` is the task's module."""

    config_class = Wav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"
    # Transformers' Flax model always has masked_spec_embed; ours (like PyTorch) only when the
    # config masks in training. PyTorch pre-training checkpoints hold the quantizer and projections.
    _keys_to_ignore_on_load_unexpected = [r"masked_spec_embed$", r"^quantizer\.", r"^project_(hid|q)\."]

    def __init__(
        self,
        config: Wav2Vec2Config,
        input_shape: tuple[int, ...] = (1, 1024),
        seed: int = 0,
        dtype: Any = jnp.float32,
        _do_init: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=_do_init, **kwargs)

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        frames = conv_output_lengths(self.config, input_shape[-1], add_adapter=False)
        if frames < 1:
            raise ValueError(
                f"input_shape {tuple(input_shape)} is too short for the conv feature encoder: {input_shape[-1]} samples give {frames} "
                f"frames; pass a longer input_shape, e.g. (1, {16 * self.config.inputs_to_logits_ratio})."
            )
        return {"input_values": jnp.zeros(input_shape, dtype=jnp.float32), "attention_mask": jnp.ones(input_shape, dtype="i4")}

    def _match_checkpoint(self, checkpoint: dict[Any, np.ndarray], fmt: str, ignore_mismatched_sizes: bool) -> Any:
        if fmt == "pt":  # PyTorch >= 2.1 checkpoints name the weight norm's parts differently
            checkpoint = {_legacy_weight_norm_name(k): v for k, v in checkpoint.items()}
        return super()._match_checkpoint(checkpoint, fmt, ignore_mismatched_sizes)

    def _get_feat_extract_output_lengths(self, input_lengths: Any, add_adapter: bool | None = None) -> Any:
        """Frames the conv stack (and the adapter) makes of ``input_lengths`` samples."""
        return conv_output_lengths(self.config, input_lengths, add_adapter)

    def _check_inputs(self, input_values: jax.Array, attention_mask: Any, mask_time_indices: Any) -> None:
        if input_values.ndim != 2:
            raise ValueError(
                f"input_values must be (batch, samples), got shape {tuple(input_values.shape)}; "
                "add a batch axis with input_values[None] or mix stereo down to mono."
            )
        frames = conv_output_lengths(self.config, input_values.shape[1], add_adapter=False)
        if frames < 1:
            raise ValueError(
                f"input_values has {input_values.shape[1]} samples, too few for the conv feature encoder (it gives {frames} frames); "
                "use longer audio (or pad it)."
            )
        if attention_mask is not None and tuple(np.shape(attention_mask)) != tuple(input_values.shape):
            raise ValueError(f"attention_mask must have the shape of input_values {tuple(input_values.shape)}, got {tuple(np.shape(attention_mask))}.")
        if mask_time_indices is not None:
            expected = (input_values.shape[0], frames)
            if tuple(np.shape(mask_time_indices)) != expected:
                raise ValueError(f"mask_time_indices must be (batch, frames) = {expected} for this input, got {tuple(np.shape(mask_time_indices))}.")
            if self.config.apply_spec_augment and not _has_masked_spec_embed(self.config):
                raise ValueError(
                    "mask_time_indices replaces frames with masked_spec_embed, which this model has only when "
                    "config.mask_time_prob > 0 or config.mask_feature_prob > 0; set one of them (as in training) and reload."
                )

    def __call__(
        self,
        input_values: Any,
        attention_mask: Any = None,
        mask_time_indices: Any = None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        freeze_feature_encoder: bool = False,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        """Run the model on raw audio ``input_values`` (B, L), compiled with ``jax.jit``.

        ``attention_mask`` (B, L) marks real samples (1) and padding (0); ``mask_time_indices``
        (B, T) boolean replaces those frames with ``masked_spec_embed`` (SpecAugment).
        ``train=True`` enables dropout and LayerDrop and needs ``dropout_rng``;
        ``freeze_feature_encoder`` stops gradients through the conv feature encoder.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.use_return_dict
        input_values = jnp.asarray(input_values, dtype=jnp.float32)
        self._check_inputs(input_values, attention_mask, mask_time_indices)
        inputs = {
            "input_values": input_values,
            "attention_mask": None if attention_mask is None else jnp.asarray(attention_mask, dtype="i4"),
            "mask_time_indices": None if mask_time_indices is None else jnp.asarray(mask_time_indices, dtype=bool),
        }
        outputs = self._run(
            inputs,
            params=params,
            dropout_rng=dropout_rng,
            train=train,
            output_attentions=bool(output_attentions),
            output_hidden_states=bool(output_hidden_states),
            freeze_feature_encoder=bool(freeze_feature_encoder),
        )
        return outputs if return_dict else outputs.to_tuple()


class FlaxWav2Vec2Model(FlaxWav2Vec2PreTrainedModel):
    module_class = FlaxWav2Vec2Module


class FlaxWav2Vec2ForCTC(FlaxWav2Vec2PreTrainedModel):
    """Per-frame token logits for CTC speech recognition; with ``labels``, also the CTC loss."""

    module_class = FlaxWav2Vec2ForCTCModule

    def __init__(self, config: Wav2Vec2Config, *args: Any, **kwargs: Any) -> None:
        if config.vocab_size is None:
            raise ValueError(
                f"{type(self).__name__} needs config.vocab_size (the number of CTC tokens), got None; "
                "set it to the size of the tokenizer's vocabulary."
            )
        super().__init__(config, *args, **kwargs)

    def __call__(self, input_values: Any, attention_mask: Any = None, *args: Any, labels: Any = None, **kwargs: Any) -> ModelOutput | tuple:
        """As :meth:`FlaxWav2Vec2PreTrainedModel.__call__`; ``labels`` (B, S) token ids, -100 where a
        row is shorter than S, add ``loss`` (see :func:`ctc_loss`; ``config.ctc_loss_reduction``,
        ``config.ctc_zero_infinity``, blank = ``config.pad_token_id``)."""
        return_dict = kwargs.pop("return_dict", None)
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        outputs = super().__call__(input_values, attention_mask, *args, return_dict=True, **kwargs)
        if labels is not None:
            labels = jnp.asarray(labels)
            if not isinstance(labels, jax.core.Tracer) and labels.size and int(labels.max()) >= self.config.vocab_size:
                raise ValueError(f"CTC labels must be below vocab_size ({self.config.vocab_size}), got {int(labels.max())}.")
            input_values = jnp.asarray(input_values)
            mask = jnp.ones(input_values.shape, "i4") if attention_mask is None else jnp.asarray(attention_mask, "i4")
            lengths = conv_output_lengths(self.config, mask.sum(-1))
            loss = ctc_loss(outputs.logits, lengths, labels, self.config.pad_token_id or 0, self.config.ctc_loss_reduction, self.config.ctc_zero_infinity)
            outputs = dataclasses.replace(outputs, loss=loss)
        return outputs if return_dict else outputs.to_tuple()


class FlaxWav2Vec2ForSequenceClassification(FlaxWav2Vec2PreTrainedModel):
    """Utterance-level classification (keyword spotting, emotion, language id...)."""

    module_class = FlaxWav2Vec2ForSequenceClassificationModule

    def __init__(self, config: Wav2Vec2Config, *args: Any, **kwargs: Any) -> None:
        if config.add_adapter:
            raise ValueError("Sequence classification does not support the use of Wav2Vec2 adapters (config.add_adapter=True); set it to False.")
        super().__init__(config, *args, **kwargs)
