"""``TFPreTrainedModel``: the TensorFlow model base class, a Keras 3 model with Transformers' checkpoints.

We import ``keras`` (Keras 3), never ``tf.keras``: with ``TF_USE_LEGACY_KERAS=1``, which
Transformers 4.x's own TensorFlow models need, ``tf.keras`` is Keras 2, while ``keras`` is Keras 3
either way, so our models behave the same wherever they run.

Variable names are the checkpoint format. A model names its layers as Transformers does
(``bert``, ``mlm___cls``, ``layer_._0``) and creates every variable in ``build`` under its
layers' name scopes, so a variable's Keras path is ``<model name>/bert/encoder/layer_._0/...``.
In files, names are written the Keras 2 way, with the model's name first and ``:0`` last
(``tf_bert_model/bert/pooler/dense/kernel:0``); loaders ignore the first part. Inside this module
a variable is keyed by its *relative* name, without the model's name: ``bert/pooler/dense/kernel:0``.

Loading reads, in Transformers' order: with ``from_pt=True`` ``pytorch_model.bin`` (and its
index) first, then ``model.safetensors`` (and its index; TensorFlow, PyTorch or Flax names, as its
metadata says), then ``tf_model.h5`` (and its index). PyTorch and Flax names are converted with
:mod:`polyformers.conversion`.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import inspect
import logging
import os
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .checkpoint_utils import (
    log_loading_report,
    FLAX_WEIGHTS_INDEX_NAME,
    FLAX_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_INDEX_NAME,
    TF2_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    read_index,
    resolve_weights,
)
from .configuration_utils import PretrainedConfig
from .conversion import flax_key_to_pt, pt_weights_for, tf_name_to_pt, to_pt_layout, to_pt_state
from .errors import CheckpointError, FrameworkNotInstalledError, WeightShapeMismatchError
from .hub import missing_file_error, pop_hub_kwargs, resolve_file
from .modeling_outputs import ModelOutput
from .tf_h5 import (
    read_safetensors_numpy,
    read_tf_h5_files,
    safetensors_format,
    strip_model_scope,
    write_tf_h5_checkpoint,
    write_tf_safetensors_checkpoint,
)

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - guarded by the [tf] extra
    raise ImportError(f"polyformers' TensorFlow models need Keras 3 (the 'keras' package), found {keras.__version__}: pip install -U keras.")
if keras.config.backend() != "tensorflow":  # pragma: no cover
    raise ImportError(
        f"polyformers' TensorFlow models need Keras 3's TensorFlow backend, but KERAS_BACKEND is "
        f"{keras.config.backend()!r}: set KERAS_BACKEND=tensorflow before importing them."
    )

logger = logging.getLogger(__name__)

TF_DEFAULT_MAX_SHARD_SIZE = "10GB"  # Transformers' TensorFlow default (PyTorch's is 5GB)
# Transformers' dummy input ids: three rows with padding in different places.
DUMMY_INPUTS = [[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]]


# --- small helpers every TensorFlow model uses ---------------------------------------------------


# Set while from_pretrained builds a model whose weights the checkpoint will overwrite: random
# initialisation of BERT-base costs 4 s on CPU, three times the rest of the load. Variables the
# checkpoint lacks are initialised afterwards (TFPreTrainedModel._initial_value).
_skip_init = contextvars.ContextVar("polyformers_tf_skip_init", default=False)


@keras.saving.register_keras_serializable(package="polyformers")
class TruncatedNormal(keras.initializers.TruncatedNormal):
    """Keras' truncated normal, which gives zeros while ``from_pretrained`` builds a model."""

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        if _skip_init.get():
            return keras.ops.zeros(shape, dtype=dtype)
        return super().__call__(shape, dtype=dtype)


def get_initializer(initializer_range: float = 0.02) -> keras.initializers.Initializer:
    """Transformers' TensorFlow initialiser: a truncated normal with std ``initializer_range``."""
    return TruncatedNormal(stddev=initializer_range)


def shape_list(tensor: tf.Tensor) -> list[int | tf.Tensor]:
    """The shape with static dimensions as ints and unknown ones as scalar tensors (for tf.function)."""
    static = tensor.shape.as_list()
    if None not in static:
        return static
    dynamic = tf.shape(tensor)
    return [dynamic[i] if d is None else d for i, d in enumerate(static)]


def extended_attention_mask(attention_mask: tf.Tensor, input_shape: list, is_decoder: bool, past_length: int | tf.Tensor, dtype: tf.DType | str) -> tf.Tensor:
    """(B, S) 1/0 mask -> (B, 1, [T or 1], S) additive mask: 0 keeps, the dtype's minimum drops.

    For decoders the mask is also causal; the ``past_length`` cached positions are all visible.
    The same mask as PyTorch's ``get_extended_attention_mask``.
    """
    dtype = tf.as_dtype(dtype)  # Keras gives dtypes as strings
    attention_mask = tf.cast(attention_mask, dtype)
    if attention_mask.shape.rank == 3:
        extended = attention_mask[:, None, :, :]
    elif attention_mask.shape.rank == 2:
        if is_decoder:
            batch_size, seq_length = input_shape[0], input_shape[1]
            query_ids = tf.range(seq_length) + past_length  # absolute positions of the new tokens
            key_ids = tf.range(seq_length + past_length)
            causal = tf.cast(key_ids[None, :] <= query_ids[:, None], dtype)  # (T, S)
            extended = causal[None, None, :, :] * attention_mask[:, None, None, :]  # (B, 1, T, S)
        else:
            extended = attention_mask[:, None, None, :]
    else:
        raise ValueError(f"attention_mask must have 2 or 3 dimensions (batch, [query,] key), got shape {attention_mask.shape}.")
    return (1.0 - extended) * dtype.min


def invert_attention_mask(encoder_attention_mask: tf.Tensor, dtype: tf.DType | str) -> tf.Tensor:
    """Encoder (B, S) 1/0 mask -> (B, 1, 1, S) additive mask for cross-attention."""
    dtype = tf.as_dtype(dtype)
    mask = tf.cast(encoder_attention_mask, dtype)
    extended = mask[:, None, :, :] if mask.shape.rank == 3 else mask[:, None, None, :]
    return (1.0 - extended) * dtype.min


def head_mask_per_layer(head_mask: Any, num_hidden_layers: int, dtype: tf.DType | str) -> list[tf.Tensor | None]:
    """(H,) or (L, H) mask of heads to keep -> a per-layer list of (1, H, 1, 1) masks (or Nones)."""
    if head_mask is None:
        return [None] * num_hidden_layers
    head_mask = tf.cast(tf.convert_to_tensor(head_mask), dtype)
    if head_mask.shape.rank == 1:
        head_mask = tf.tile(head_mask[None, None, :, None, None], [num_hidden_layers, 1, 1, 1, 1])
    elif head_mask.shape.rank == 2:
        head_mask = head_mask[:, None, :, None, None]
    else:
        raise ValueError(f"head_mask must have shape (num_heads,) or (num_layers, num_heads), got {head_mask.shape}.")
    if head_mask.shape[0] != num_hidden_layers:
        raise ValueError(f"head_mask has {head_mask.shape[0]} layers, but the model has {num_hidden_layers}.")
    return [head_mask[i] for i in range(num_hidden_layers)]


def masked_mean_cross_entropy(labels: tf.Tensor, logits: tf.Tensor, ignore_all_negative: bool = False) -> tf.Tensor:
    """Mean cross-entropy over the positions whose label is not -100, shaped (1,) as in Transformers.

    ``ignore_all_negative`` also ignores other negative labels (Transformers' token classification
    still accepts the deprecated -1).
    """
    labels = tf.cast(labels, tf.int32)
    # Ignored positions get label 0 (any valid class) and then weight 0, which keeps XLA shapes static.
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.nn.relu(labels), logits=logits)
    mask = tf.cast(labels >= 0 if ignore_all_negative else labels != -100, losses.dtype)
    return tf.reshape(tf.reduce_sum(losses * mask) / tf.reduce_sum(mask), (1,))


# --- outputs -------------------------------------------------------------------------------------


_TF_OUTPUT_CLASSES: dict[type, type] = {}


def tf_output_class(output_class: type[ModelOutput]) -> type[ModelOutput]:
    """``output_class`` as a subclass TensorFlow can rebuild: ``TFMaskedLMOutput`` for ``MaskedLMOutput``.

    ``tf.function`` returns a mapping by calling its type with one iterable of ``(key, value)``
    pairs, as ``dict`` accepts; our framework-free outputs are dataclasses that take fields. The
    subclass accepts both, and is still an instance of ``output_class`` (its name follows
    Transformers' TensorFlow output classes).
    """
    if output_class in _TF_OUTPUT_CLASSES:
        return _TF_OUTPUT_CLASSES[output_class]
    names = {f.name for f in fields(output_class)}

    def __init__(self: ModelOutput, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs and isinstance(args[0], (types.GeneratorType, Iterator, list)):
            items = list(args[0])
            if all(isinstance(i, tuple) and len(i) == 2 and i[0] in names for i in items):
                args, kwargs = (), dict(items)
            else:
                args = (items,)
        output_class.__init__(self, *args, **kwargs)

    def __reduce__(self: ModelOutput) -> tuple:  # pickles as the framework-free class
        return output_class, tuple(getattr(self, f.name) for f in fields(self))

    name = output_class.__name__ if output_class.__name__.startswith("TF") else f"TF{output_class.__name__}"
    namespace = {"__init__": __init__, "__reduce__": __reduce__, "__module__": output_class.__module__, "__doc__": output_class.__doc__}
    subclass = type(name, (output_class,), namespace)
    _TF_OUTPUT_CLASSES[output_class] = subclass
    return subclass


# --- inputs --------------------------------------------------------------------------------------


def unpack_inputs(call: Callable) -> Callable:
    """Let ``call`` take its inputs as one dict too, as Keras passes them (``model(batch)``, ``fit``).

    ``model({"input_ids": ids, "attention_mask": mask})`` becomes
    ``model.call(input_ids=ids, attention_mask=mask)``; keyword arguments given beside the dict win.
    The main input is ``call``'s first argument, whatever its name (``input_ids``, ``input_values``).
    """
    main_input = list(inspect.signature(call).parameters)[1]

    @functools.wraps(call)
    def wrapper(self: Any, main: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(main, Mapping):
            kwargs = {**dict(main), **kwargs}
            main = kwargs.pop(main_input, None)
        elif main is None and main_input in kwargs:
            main = kwargs.pop(main_input)
        return call(self, main, *args, **kwargs)

    return wrapper


# --- loading report ------------------------------------------------------------------------------


class _LoadingInfo:
    def __init__(self) -> None:
        self.missing_keys: list[str] = []
        self.unexpected_keys: list[str] = []
        self.mismatched_keys: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []

    def as_dict(self) -> dict[str, list]:
        return {"missing_keys": self.missing_keys, "unexpected_keys": self.unexpected_keys, "mismatched_keys": self.mismatched_keys, "error_msgs": []}


def _matches_any(key: str, patterns: list[str]) -> bool:
    return any(re.search(p, key) for p in patterns)


# --- the base class ------------------------------------------------------------------------------


class TFPreTrainedModel(keras.Model):
    """Base of every TensorFlow model: config, Transformers-compatible checkpoints, Keras training.

    Subclasses set ``config_class`` and ``base_model_prefix`` (the top-level layer holding the
    backbone, e.g. ``"bert"``), create their layers in ``__init__`` with Transformers' names, and
    create every variable in ``build`` (Keras 3 locks a layer's state once it is built).

    ``compile()`` without a loss trains on the loss the model computes itself from labels passed
    with the inputs (``fit({"input_ids": ..., "labels": ...})``, or ``fit(x, y)`` with ``y`` the
    labels); with a Keras loss, that loss is applied to the model's logits.
    """

    config_class: type[PretrainedConfig] = PretrainedConfig
    base_model_prefix: str = ""
    main_input_name: str = "input_ids"
    # Regexes of checkpoint names that may be missing or unexpected without a warning (TensorFlow
    # names like "bert/pooler/dense/kernel:0", or PyTorch names when loading PyTorch weights).
    _keys_to_ignore_on_load_missing: list[str] = []
    _keys_to_ignore_on_load_unexpected: list[str] = []
    # PyTorch parameters a PyTorch checkpoint may leave out because they are tied:
    # {tied PyTorch name: PyTorch name it is a copy of}.
    _pt_tied_weights_keys: dict[str, str] = {}
    # Extra (regex, replacement) pairs applied to this family's TF names before the standard
    # table of polyformers.conversion: how a plugin whose names differ extends it with data.
    _tf_weight_renames: tuple[tuple[str, str], ...] = ()

    @classmethod
    def _tf_name_to_pt(cls, name: str, ndim: int) -> tuple[str, Any]:
        return tf_name_to_pt(name, ndim, renames=cls._tf_weight_renames)

    def __init__(self, config: PretrainedConfig, *inputs: Any, **kwargs: Any) -> None:
        if not isinstance(config, PretrainedConfig):
            raise TypeError(
                f"{type(self).__name__} expects a {self.config_class.__name__} (a PretrainedConfig) "
                f"as config, got {type(config).__name__}. To load weights use "
                f"{type(self).__name__}.from_pretrained(path)."
            )
        # Extra positional inputs are accepted as in Transformers and ignored: given to keras.Model
        # they would make it a functional model.
        super().__init__(**kwargs)
        self.config = config
        self.name_or_path = config.name_or_path
        self._uses_model_loss = True

    @property
    def framework(self) -> str:
        return "tf"

    @property
    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        """Inputs that run every layer once (what ``build`` may use); batch of 3, length 5."""
        dummies = {"input_ids": tf.constant(DUMMY_INPUTS, dtype=tf.int32)}
        if getattr(self.config, "add_cross_attention", False):
            dummies["encoder_hidden_states"] = tf.zeros((3, 5, self.config.hidden_size))
        return dummies

    def build(self, input_shape: Any = None) -> None:
        """Create every variable. Families override this to build each layer with known shapes;
        this fallback runs the model once on :attr:`dummy_inputs` inside the model's name scope."""
        if self.built:
            return
        self.call(**self.dummy_inputs, training=False)  # not self(): __call__ would build again

    def build_in_name_scope(self) -> None:
        """Create every variable now (Transformers' name for it)."""
        self.build(None)

    # --- config and construction ---------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> "TFPreTrainedModel":
        """Build from a ``PretrainedConfig`` (random weights), or from Keras' ``get_config()`` dict."""
        if isinstance(config, PretrainedConfig):
            return cls._from_config(config, **kwargs)
        if isinstance(config, dict) and isinstance(config.get("config"), dict):
            return cls(cls.config_class.from_dict(config["config"]), name=config.get("name"), **kwargs)
        return cls(cls.config_class.from_dict(config), **kwargs)

    @classmethod
    def _from_config(cls, config: PretrainedConfig, **kwargs: Any) -> "TFPreTrainedModel":
        for ignored in ("torch_dtype", "dtype", "attn_implementation"):
            kwargs.pop(ignored, None)
        model = cls(copy.deepcopy(config), **kwargs)
        model.build_in_name_scope()
        return model

    # --- embeddings, heads, sizes ----------------------------------------------------------------

    def get_input_embeddings(self) -> keras.layers.Layer:
        main_layer = getattr(self, self.base_model_prefix, self)
        if main_layer is not self:
            return main_layer.get_input_embeddings()
        raise NotImplementedError(f"{type(self).__name__} does not define get_input_embeddings().")

    def get_output_embeddings(self) -> keras.layers.Layer | None:
        return None

    def get_head_mask(self, head_mask: Any, num_hidden_layers: int) -> list[tf.Tensor | None]:
        return head_mask_per_layer(head_mask, num_hidden_layers, self.compute_dtype)

    def num_parameters(self, only_trainable: bool = False) -> int:
        variables = self.trainable_weights if only_trainable else self.weights
        return int(sum(np.prod(v.shape) for v in variables))

    # --- variable names ------------------------------------------------------------------------

    def _named_variables(self) -> dict[str, Any]:
        """Every variable once, by relative name: ``{"bert/pooler/dense/kernel:0": variable}``."""
        if not self.built:
            self.build_in_name_scope()
        scope = (getattr(self, "path", None) or self.name) + "/"
        named: dict[str, Any] = {}
        for variable in self.weights:
            path = variable.path
            relative = path[len(scope) :] if path.startswith(scope) else path
            named.setdefault(relative + ":0", variable)
        return named

    def _full_name(self, relative: str) -> str:
        return f"{self.name}/{relative}"

    def _weights_by_layer(self) -> dict[str, dict[str, np.ndarray]]:
        """``{top-level layer: {full name: array}}`` in Keras 2's h5 grouping (shared variables in each layer using them).

        Layers without variables (dropout) are left out: Transformers' loader would report them as
        unexpected layers (it does so for its own files, whose dropout layers get numbered names).
        """
        relative_of = {id(v): name for name, v in self._named_variables().items()}
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for layer in self.layers:
            variables = layer.trainable_weights + layer.non_trainable_weights  # Keras 2's h5 order
            if variables:
                grouped[layer.name] = {self._full_name(relative_of[id(v)]): v.numpy() for v in variables}
        return grouped

    def _top_level_weights(self) -> dict[str, np.ndarray]:
        """``{full name: array}`` of variables the model owns itself rather than a layer (Keras 2
        saves them apart, in ``top_level_model_weights``; e.g. Wav2Vec2's ``layer_weights``)."""
        in_layers = {id(v) for layer in self.layers for v in layer.weights}
        return {self._full_name(name): v.numpy() for name, v in self._named_variables().items() if id(v) not in in_layers}

    # --- PyTorch weights in memory ------------------------------------------------------------

    def load_pt_state_dict(self, state_dict: Mapping[str, Any], ignore_mismatched_sizes: bool = False) -> dict[str, list]:
        """Fill this model from a PyTorch state dict (torch tensors or numpy arrays), in memory.

        Names and layouts are converted as for ``from_pretrained(..., from_pt=True)``; returns the
        loading report (``missing_keys``, ``unexpected_keys``, ``mismatched_keys``).
        """
        arrays = {name: _to_numpy(value) for name, value in state_dict.items()}
        return self._load_weights("pt", arrays, ignore_mismatched_sizes).as_dict()

    def pt_state_dict(self) -> dict[str, np.ndarray]:
        """This model's weights as a PyTorch state dict of numpy arrays (PyTorch names and layouts).

        Tied copies are not repeated (PyTorch models tie them again on load), as in PyTorch's
        ``save_pretrained``.
        """
        return to_pt_state({self._full_name(name): v.numpy() for name, v in self._named_variables().items()}, self._tf_name_to_pt)

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args: Any,
        config: PretrainedConfig | str | os.PathLike | None = None,
        from_pt: bool = False,
        output_loading_info: bool = False,
        ignore_mismatched_sizes: bool = False,
        use_safetensors: bool | None = None,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> "TFPreTrainedModel" | tuple["TFPreTrainedModel", dict[str, list]]:
        """Load a model from a directory written by ``save_pretrained`` (ours or Transformers') or a hub repo.

        Weight files are tried in Transformers' TensorFlow order: with ``from_pt=True``
        ``pytorch_model.bin`` first (read by torch's safe unpickler), then ``model.safetensors``
        (TensorFlow, PyTorch or Flax names), then ``tf_model.h5``; each also sharded with an
        index. Backbone checkpoints load into task models and vice versa. Variables the
        checkpoint lacks, checkpoint entries the model does not use, and shape mismatches are
        warned about and returned with ``output_loading_info=True``.
        """
        if pretrained_model_name_or_path is None:
            raise ValueError("Pass the directory or hub repo id to load from.")
        for ignored in ("trust_remote_code", "load_weight_prefix", "mirror", "_from_auto", "_from_pipeline", "resume_download",
                        "torch_dtype", "dtype", "attn_implementation", "low_cpu_mem_usage", "device_map", "tf_to_pt_weight_rename"):
            kwargs.pop(ignored, None)
        if kwargs.pop("from_flax", False):
            raise NotImplementedError(
                "TensorFlow models do not load flax_model.msgpack (Transformers' TF models do not "
                "either): load it with the Flax or PyTorch class and save it as safetensors."
            )
        hub_kwargs = pop_hub_kwargs(kwargs)

        if not isinstance(config, PretrainedConfig):
            config_path = config if config is not None else pretrained_model_name_or_path
            config, model_kwargs = cls.config_class.from_pretrained(config_path, return_unused_kwargs=True, **hub_kwargs, **kwargs)
        else:
            config = copy.deepcopy(config)
            model_kwargs = {}
            for key, value in kwargs.items():
                if hasattr(config, key):
                    setattr(config, key, value)
                else:
                    model_kwargs[key] = value
        config.name_or_path = os.fspath(pretrained_model_name_or_path)

        weights_name, files = cls._find_weights(pretrained_model_name_or_path, from_pt, use_safetensors, hub_kwargs)
        kind, checkpoint = _read_checkpoint(weights_name, files, weights_only)

        token = _skip_init.set(True)
        try:
            model = cls(config, *model_args, **model_kwargs)
            model.build_in_name_scope()
        finally:
            _skip_init.reset(token)
        info = model._load_weights(kind, checkpoint, ignore_mismatched_sizes, initialize_rest=True)
        if output_loading_info:
            return model, info.as_dict()
        return model

    @classmethod
    def _find_weights(cls, path: Any, from_pt: bool, use_safetensors: bool | None, hub_kwargs: dict) -> tuple[str, list[str]]:
        candidates = []
        if from_pt:
            candidates.append((WEIGHTS_NAME, WEIGHTS_INDEX_NAME))
        if use_safetensors is not False:
            candidates.append((SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME))
        if not use_safetensors:
            candidates.append((TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME))
        found = resolve_weights(path, candidates, **hub_kwargs)
        if found is not None:
            return found
        looked_for = ", ".join(name for pair in candidates for name in pair)
        error = missing_file_error(path, f"TensorFlow-loadable weights (looked for {looked_for})", **hub_kwargs)
        if not from_pt and (resolve_file(path, WEIGHTS_NAME, **hub_kwargs) or resolve_file(path, WEIGHTS_INDEX_NAME, **hub_kwargs)):
            raise OSError(f"{error} It has PyTorch weights ({WEIGHTS_NAME}): pass from_pt=True to load them.")
        if use_safetensors and resolve_file(path, TF2_WEIGHTS_NAME, **hub_kwargs):
            raise OSError(f"{error} It has {TF2_WEIGHTS_NAME}: pass use_safetensors=False (or leave it unset) to load it.")
        if resolve_file(path, FLAX_WEIGHTS_NAME, **hub_kwargs) or resolve_file(path, FLAX_WEIGHTS_INDEX_NAME, **hub_kwargs):
            raise OSError(
                f"{error} It has Flax weights ({FLAX_WEIGHTS_NAME}), which TensorFlow models do not read: "
                f"load them with the Flax class and save them as safetensors."
            )
        raise error

    def _load_weights(self, kind: str, checkpoint: dict[str, np.ndarray], ignore_mismatched_sizes: bool, initialize_rest: bool = False) -> _LoadingInfo:
        """Assign checkpoint arrays to the model's variables; report what did not match.

        ``initialize_rest``: the model was built without random initialisation, so variables the
        checkpoint does not fill get their initial values now.
        """
        variables = self._named_variables()
        info = _LoadingInfo()
        if kind == "pt":
            # tf_name_to_pt expects full names (it drops the model's name itself).
            relative = {self._full_name(name): name for name in variables}
            shapes = {full: tuple(variables[name].shape) for full, name in relative.items()}
            arrays, report = pt_weights_for(
                checkpoint, shapes, self._tf_name_to_pt, base_model_prefix=self.base_model_prefix, tied_sources=self._pt_tied_weights_keys
            )
            found = {relative[k]: a for k, a in arrays.items()}
            info.missing_keys = [relative[k] for k in report.missing_keys]
            info.unexpected_keys = list(report.unexpected_keys)
            info.mismatched_keys = [(relative[k], a, b) for k, a, b in report.mismatched_keys]
        else:
            found, info = self._match_tf_names(variables, checkpoint)

        if info.mismatched_keys and not ignore_mismatched_sizes:
            lines = "\n".join(f"- {k}: checkpoint {list(a)}, model {list(b)}" for k, a, b in info.mismatched_keys)
            raise WeightShapeMismatchError(
                f"Error(s) in loading weights for {type(self).__name__}: {len(info.mismatched_keys)} "
                f"checkpoint tensors have other shapes than the model's variables:\n{lines}\n"
                f"Fix: use a config matching the checkpoint, or pass ignore_mismatched_sizes=True to "
                f"initialise these variables anew (e.g. a classifier with another num_labels)."
            )
        for name, array in found.items():
            variable = variables[name]
            if array.dtype != variable.dtype:  # e.g. a bfloat16 checkpoint into a float32 model
                array = array.astype(variable.dtype)
            variable.assign(array)
        if initialize_rest:
            for name, variable in variables.items():
                if name not in found:
                    variable.assign(self._initial_value(name, tuple(variable.shape), variable.dtype))

        info.missing_keys = [k for k in info.missing_keys if not _matches_any(k, self._keys_to_ignore_on_load_missing)]
        info.unexpected_keys = [k for k in info.unexpected_keys if not _matches_any(k, self._keys_to_ignore_on_load_unexpected)]
        self._warn_loading_report(info)
        return info

    def _initial_value(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        """The random initial value of a variable, by its name, as Transformers' TF models initialise
        them: kernels and embeddings from a truncated normal with std ``config.initializer_range``,
        LayerNorm scales ones, biases and the rest zeros. Families with other rules override this."""
        leaf = name.rsplit("/", 1)[-1].removesuffix(":0")
        if leaf in ("kernel", "embeddings", "weight", "depthwise_kernel", "pointwise_kernel"):
            return keras.initializers.TruncatedNormal(stddev=getattr(self.config, "initializer_range", 0.02))(shape, dtype=dtype)
        if leaf in ("gamma", "moving_variance"):
            return keras.ops.ones(shape, dtype=dtype)
        return keras.ops.zeros(shape, dtype=dtype)

    def _match_tf_names(self, variables: dict[str, Any], checkpoint: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], _LoadingInfo]:
        info = _LoadingInfo()
        checkpoint = self._adjust_base_prefix(checkpoint, variables)
        found: dict[str, np.ndarray] = {}
        used: set[str] = set()
        for name, variable in variables.items():
            source = name
            # Transformers' retro-compatibility: some embeddings were saved as ".../weight:0".
            if source not in checkpoint and name.endswith("embeddings:0"):
                source = name[: -len("embeddings:0")] + "weight:0"
            if source not in checkpoint:
                info.missing_keys.append(name)
                continue
            used.add(source)
            array = checkpoint[source]
            expected = tuple(variable.shape)
            if tuple(array.shape) != expected:
                if array.size != np.prod(expected):
                    info.mismatched_keys.append((name, tuple(array.shape), expected))
                    continue
                array = np.reshape(array, expected)  # same values, e.g. (1, N) saved for (N,), as Transformers allows
            found[name] = array
        info.unexpected_keys = sorted(set(checkpoint) - used)
        return found, info

    def _adjust_base_prefix(self, checkpoint: dict[str, np.ndarray], variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Add or drop ``<base_model_prefix>/`` when checkpoint and model disagree (rare in TF:
        Transformers' base models keep their backbone under the prefix too)."""
        prefix = self.base_model_prefix
        if not prefix:
            return checkpoint
        model_has = any(k.startswith(prefix + "/") for k in variables)
        checkpoint_has = any(k.startswith(prefix + "/") for k in checkpoint)
        if model_has and not checkpoint_has:
            return {f"{prefix}/{k}": v for k, v in checkpoint.items()}
        if checkpoint_has and not model_has:
            return {(k[len(prefix) + 1 :] if k.startswith(prefix + "/") else k): v for k, v in checkpoint.items()}
        return checkpoint

    def _warn_loading_report(self, info: Any) -> None:
        log_loading_report(logger, type(self).__name__, info)

    # --- saving --------------------------------------------------------------------------------

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        saved_model: bool = False,
        version: int = 1,
        push_to_hub: bool = False,
        signatures: Any = None,
        max_shard_size: int | str = TF_DEFAULT_MAX_SHARD_SIZE,
        create_pr: bool = False,
        safe_serialization: bool = False,
        token: str | bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Write ``config.json`` and the weights: ``tf_model.h5`` by default (Transformers' TF default),
        ``model.safetensors`` with ``{"format": "tf"}`` when ``safe_serialization=True``; sharded
        with an index above ``max_shard_size``.

        Every file is written under a temporary name and renamed into place; weight files of the
        same kind from an earlier save that this one does not use are removed.
        """
        if push_to_hub:
            raise NotImplementedError("push_to_hub is not supported: save locally, then upload with huggingface_hub.")
        if saved_model:
            raise NotImplementedError("saved_model=True is not supported: export a SavedModel with Keras 3's model.export(path).")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file; pass a directory path.")
        os.makedirs(save_directory, exist_ok=True)

        config = copy.deepcopy(self.config)
        class_name = type(self).__name__
        config.architectures = [class_name[2:] if class_name.startswith("TF") else class_name]  # as Transformers writes it

        if safe_serialization:
            weights = {self._full_name(name): v.numpy() for name, v in self._named_variables().items()}
            write_tf_safetensors_checkpoint(save_directory, weights, max_shard_size)
        else:
            write_tf_h5_checkpoint(save_directory, self._weights_by_layer(), max_shard_size, self._top_level_weights())
        config.save_pretrained(save_directory)

    # --- Keras training ------------------------------------------------------------------------

    def prepare_tf_dataset(
        self,
        dataset: Any,
        batch_size: int = 8,
        shuffle: bool = True,
        tokenizer: Any = None,
        collate_fn: Callable[..., Mapping[str, Any]] | None = None,
        collate_fn_args: dict[str, Any] | None = None,
        drop_remainder: bool | None = None,
        prefetch: bool = True,
    ) -> tf.data.Dataset:
        """A ``tf.data.Dataset`` of padded ``(inputs, labels)`` batches, ready for ``fit``, ``evaluate``, ``predict``.

        Args:
            dataset: a Hugging Face ``datasets.Dataset``, a list of dicts (one per example) or a
                dict of equally long lists (one per column). Columns the model's ``call`` does not
                take are dropped; ``label`` and ``label_ids`` become ``labels``.
            batch_size: examples per batch.
            shuffle: visit the examples in a new random order each epoch (numpy's global RNG,
                which ``keras.utils.set_random_seed`` seeds).
            tokenizer: pads each batch to its longest example (``DataCollatorWithPadding``).
                Ignored when ``collate_fn`` is given.
            collate_fn: turns a list of examples (dicts) into a dict of arrays. Defaults to
                ``DataCollatorWithPadding(tokenizer)`` with a tokenizer, else ``DefaultDataCollator()``.
            collate_fn_args: extra keyword arguments for ``collate_fn``.
            drop_remainder: drop the last, smaller batch; defaults to ``shuffle`` (training).
            prefetch: prepare the next batches while the model runs.

        Each element is ``(inputs, labels)``: ``labels`` is one tensor when the model takes one
        label argument, a dict for several (``start_positions``, ``end_positions``); without label
        columns elements are ``inputs`` alone. Batches are padded one by one, so shapes vary:
        every dimension but a dropped-remainder batch's first is ``None``. ``len()`` of the result
        is the number of batches per epoch (what ``create_optimizer``'s ``num_train_steps`` needs).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        batch_size = int(batch_size)
        if drop_remainder is None:
            drop_remainder = shuffle
        if collate_fn is None:
            collate_fn = _default_collator(tokenizer)
        collate_fn_args = dict(collate_fn_args or {})

        source = _RowSource.from_dataset(dataset)
        if len(source) == 0:
            raise ValueError("prepare_tf_dataset got an empty dataset (0 examples): there is nothing to batch.")
        model_inputs = [
            p.name
            for p in inspect.signature(self.call).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "training"
        ]
        label_names = self._label_names
        aliases = _LABEL_ALIASES if "labels" in model_inputs else ()
        kept = [c for c in source.columns if c in model_inputs or c in aliases]
        if not [c for c in kept if c not in label_names and c not in aliases]:
            raise ValueError(
                f"None of the dataset's columns {source.columns} is an input of {type(self).__name__}, which "
                f"takes {[n for n in model_inputs if n not in label_names]}: tokenize the text first "
                f"(e.g. dataset.map(lambda rows: tokenizer(rows['text'], truncation=True), batched=True))."
            )
        dropped = [c for c in source.columns if c not in kept]
        if dropped:
            logger.info("prepare_tf_dataset: dropping columns %s, not arguments of %s.call.", dropped, type(self).__name__)
        source = source.select(kept)

        n_rows = len(source)
        if drop_remainder and n_rows < batch_size:
            raise ValueError(
                f"The dataset has {n_rows} examples, fewer than batch_size={batch_size}, and drop_remainder=True "
                f"(the default when shuffle=True) would leave no batch: lower batch_size or pass drop_remainder=False."
            )
        n_batches = n_rows // batch_size if drop_remainder else -(-n_rows // batch_size)

        def collate(indices: np.ndarray) -> dict[str, np.ndarray]:
            batch = collate_fn(source.rows(indices), **collate_fn_args)
            if not isinstance(batch, Mapping):
                raise TypeError(f"collate_fn must return a dict of arrays, got {type(batch).__name__}.")
            batch = {k: np.asarray(v) for k, v in batch.items()}
            for alias in aliases:  # a custom collate_fn may leave Datasets' "label" as it is
                if alias in batch and "labels" not in batch:
                    batch["labels"] = batch.pop(alias)
            return batch

        # The first batch tells the names, dtypes and ranks of what the collator returns.
        example = collate(np.arange(min(batch_size, n_rows)))
        first_dim = batch_size if drop_remainder else None
        signature = {
            key: tf.TensorSpec(shape=(first_dim,) + (None,) * (value.ndim - 1), dtype=_tf_dtype(value))
            for key, value in example.items()
        }
        labels = [k for k in signature if k in label_names]
        features = [k for k in signature if k not in label_names]
        if not labels:
            logger.warning(
                "prepare_tf_dataset: the batches hold no labels (none of %s): fine for predict(), but fit() and "
                "evaluate() need them, or a loss given to compile() and labels passed as y.",
                label_names,
            )

        def split(batch: dict[str, Any]) -> Any:
            inputs = {k: batch[k] for k in features}
            if not labels:
                return inputs
            if len(labels) == 1 and labels[0] == label_names[0]:
                return inputs, batch[labels[0]]
            return inputs, {k: batch[k] for k in labels}

        def generate() -> Iterator[Any]:
            order = np.random.permutation(n_rows) if shuffle else np.arange(n_rows)
            for start in range(0, n_batches * batch_size, batch_size):
                batch = collate(order[start : start + batch_size])
                if batch.keys() != signature.keys():
                    raise ValueError(
                        f"collate_fn returned the keys {sorted(batch)} for one batch and {sorted(signature)} for the "
                        f"first: every batch must hold the same keys."
                    )
                yield split({k: np.asarray(v, dtype=signature[k].dtype.as_numpy_dtype) for k, v in batch.items()})

        tf_dataset = tf.data.Dataset.from_generator(generate, output_signature=split(signature))
        tf_dataset = tf_dataset.apply(tf.data.experimental.assert_cardinality(n_batches))
        if prefetch:
            tf_dataset = tf_dataset.prefetch(tf.data.AUTOTUNE)
        return tf_dataset

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, *args: Any, **kwargs: Any) -> None:
        """Keras' ``compile``; without a ``loss`` the model trains on the loss it computes from labels."""
        if loss in ("auto", "auto_with_warning"):  # Transformers' spelling of "use the model's loss"
            loss = None
        self._uses_model_loss = loss is None
        super().compile(optimizer, loss, *args, **kwargs)

    @functools.cached_property
    def _label_names(self) -> list[str]:
        """The call arguments that take labels, as Transformers finds them."""
        parameters = inspect.signature(self.call).parameters
        return [p for p in parameters if "label" in p or p in ("start_positions", "end_positions")]

    def _labels_into_inputs(self, data: Any) -> Any:
        """Move Keras' ``y`` into the inputs under the label argument names, for the model's own loss."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not self._uses_model_loss or y is None:
            return data
        if not isinstance(x, Mapping):
            x = {self.main_input_name: x}
        x = dict(x)
        if isinstance(y, Mapping):
            x.update(y)
        elif isinstance(y, (tuple, list)) and len(y) == len(self._label_names):
            x.update(zip(self._label_names, y))
        elif len(self._label_names) >= 1:
            x[self._label_names[0]] = y
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def train_step(self, data: Any) -> Any:
        return super().train_step(self._labels_into_inputs(data))

    def test_step(self, data: Any) -> Any:
        return super().test_step(self._labels_into_inputs(data))

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True) -> Any:
        if not self._uses_model_loss:
            return super().compute_loss(x, y, _main_output(y_pred), sample_weight, training=training)
        loss = y_pred.get("loss") if isinstance(y_pred, Mapping) else None
        if loss is None:
            raise ValueError(
                f"{type(self).__name__} computed no loss: pass the labels with the inputs (as "
                f"{self._label_names or ['labels']}) or as y, or give compile() a loss to apply to the logits."
            )
        total = tf.reduce_mean(loss)  # Transformers' TF losses are (1,) or per example
        for extra in self.losses:  # regularisation losses added by layers
            total = total + tf.cast(tf.reduce_sum(extra), total.dtype)
        # Under a tf.distribute strategy each replica sees its share of the batch and the
        # optimiser sums the replicas' gradients: scale as Keras' own losses do, so the update is
        # that of the mean loss (Keras unscales it again for the reported loss).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / replicas if replicas > 1 else total

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if y is None and isinstance(x, Mapping):
            labels = [x[name] for name in self._label_names if name in x]
            y = labels[0] if len(labels) == 1 else (tuple(labels) if labels else None)
        return super().compute_metrics(x, y, _main_output(y_pred), sample_weight)

    def predict_step(self, data: Any) -> Any:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(x, training=False)
        if isinstance(outputs, ModelOutput):
            # Keras batches and concatenates plain dicts; predict() restores the output class.
            object.__setattr__(self, "_predict_output_class", type(outputs))
            return dict(outputs)
        return outputs

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Keras' ``predict``, returning the model's output class holding numpy arrays."""
        outputs = super().predict(*args, **kwargs)
        output_class = getattr(self, "_predict_output_class", None)
        if output_class is not None and isinstance(outputs, dict):
            return output_class(**outputs)
        return outputs


def _main_output(y_pred: Any) -> Any:
    """The tensor Keras losses and metrics compare with ``y``: the logits (or the first output)."""
    if not isinstance(y_pred, Mapping):
        return y_pred
    for key in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if key in y_pred:
            return y_pred[key]
    return next(v for k, v in y_pred.items() if k != "loss")


# --- prepare_tf_dataset's helpers ----------------------------------------------------------------

# Label column names of Hugging Face datasets that models take as ``labels``.
_LABEL_ALIASES = ("label", "label_ids")


def _default_collator(tokenizer: Any) -> Callable[..., Mapping[str, Any]]:
    """Transformers' default: pad with the tokenizer when there is one, else stack as they are."""
    from .data.data_collator import DataCollatorWithPadding, DefaultDataCollator

    if tokenizer is None:
        return DefaultDataCollator(return_tensors="np")
    return DataCollatorWithPadding(tokenizer=tokenizer, return_tensors="np")


def _tf_dtype(value: np.ndarray) -> tf.DType:
    if value.dtype.kind in "OUS":
        raise TypeError(
            f"collate_fn returned an array of {value.dtype} (text?) where the model needs numbers: tokenize the "
            f"column first, or leave it out of the dataset."
        )
    return tf.as_dtype(value.dtype)


class _RowSource:
    """Examples by index from a ``datasets.Dataset``, a list of dicts or a dict of lists.

    ``datasets`` is duck-typed (``column_names``, ``select_columns``, ``dataset[list_of_indices]``),
    so library code never imports it.
    """

    def __init__(self, columns: list[str], length: int, fetch: Callable[[list[int], list[str]], list[dict]]) -> None:
        self.columns = columns
        self._length = length
        self._fetch = fetch
        self._selected = list(columns)

    def __len__(self) -> int:
        return self._length

    def select(self, columns: list[str]) -> "_RowSource":
        self._selected = list(columns)
        return self

    def rows(self, indices: np.ndarray) -> list[dict[str, Any]]:
        return self._fetch([int(i) for i in indices], self._selected)

    @classmethod
    def from_dataset(cls, dataset: Any) -> "_RowSource":
        if isinstance(dataset, Mapping):
            if any(hasattr(v, "column_names") for v in dataset.values()):
                raise TypeError(
                    f"prepare_tf_dataset got a dict of datasets (splits {list(dataset)}): pass one split, "
                    f"e.g. dataset[{next(iter(dataset))!r}]."
                )
            return cls._from_columns(dataset)
        if hasattr(dataset, "column_names") and hasattr(dataset, "__getitem__"):
            return cls._from_hf_dataset(dataset)
        if isinstance(dataset, (list, tuple)):
            return cls._from_rows(dataset)
        raise TypeError(
            f"prepare_tf_dataset takes a datasets.Dataset, a list of dicts or a dict of lists, got "
            f"{type(dataset).__name__}. For a streaming (iterable) dataset, build the tf.data pipeline yourself."
        )

    @classmethod
    def _from_columns(cls, columns: Mapping[str, Any]) -> "_RowSource":
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"Every column of a dict of lists must have the same length, got {lengths}.")
        length = next(iter(lengths.values()), 0)

        def fetch(indices: list[int], names: list[str]) -> list[dict[str, Any]]:
            return [{name: columns[name][i] for name in names} for i in indices]

        return cls(list(columns), length, fetch)

    @classmethod
    def _from_rows(cls, rows: list | tuple) -> "_RowSource":
        bad = next((i for i, row in enumerate(rows) if not isinstance(row, Mapping)), None)
        if bad is not None:
            raise TypeError(
                f"A list dataset must hold one dict per example; item {bad} is a {type(rows[bad]).__name__}."
            )
        columns = list(rows[0]) if rows else []

        def fetch(indices: list[int], names: list[str]) -> list[dict[str, Any]]:
            try:
                return [{name: rows[i][name] for name in names} for i in indices]
            except KeyError as exc:
                missing = next(i for i in indices if exc.args[0] not in rows[i])
                raise ValueError(
                    f"Example {missing} has no {exc.args[0]!r}, which example 0 has: every example needs the same keys."
                ) from None

        return cls(columns, len(rows), fetch)

    @classmethod
    def _from_hf_dataset(cls, dataset: Any) -> "_RowSource":
        if not hasattr(dataset, "__len__"):
            raise TypeError(
                f"prepare_tf_dataset needs a dataset with a length, got {type(dataset).__name__} (streaming?)."
            )
        selected: dict[tuple[str, ...], Any] = {}

        def fetch(indices: list[int], names: list[str]) -> list[dict[str, Any]]:
            key = tuple(names)
            if key not in selected:  # select once: fetching only the kept columns skips the text
                selected[key] = dataset.select_columns(names) if hasattr(dataset, "select_columns") else dataset
            columns = selected[key][indices]  # {column: values}, one batch
            return [{name: columns[name][j] for name in names} for j in range(len(indices))]

        return cls(list(dataset.column_names), len(dataset), fetch)


# --- reading checkpoints into numpy ----------------------------------------------------------------


def _read_checkpoint(weights_name: str, files: list[str], weights_only: bool) -> tuple[str, dict[str, np.ndarray]]:
    """``("tf", {relative TF name: array})`` or ``("pt", {PyTorch name: array})`` from resolved files."""
    if weights_name.startswith("tf_model.h5"):
        return "tf", {strip_model_scope(k): v for k, v in read_tf_h5_files(files).items()}
    if weights_name.startswith("model.safetensors"):
        return _read_safetensors_checkpoint(weights_name, files)
    return "pt", _read_torch_checkpoint(weights_name, files, weights_only)


def _read_safetensors_checkpoint(weights_name: str, files: list[str]) -> tuple[str, dict[str, np.ndarray]]:
    is_index = weights_name.endswith(".index.json")
    shards = files[1:] if is_index else files
    tensors: dict[str, np.ndarray] = {}
    fmt = None
    for shard in shards:
        shard_tensors, metadata = read_safetensors_numpy(shard)
        fmt = fmt or safetensors_format(metadata, list(shard_tensors), shard)
        tensors.update(shard_tensors)
    if is_index:
        listed = {strip_model_scope(k) if fmt == "tf" else k for k in read_index(files[0])}
        absent = sorted(listed - set(tensors))
        if absent:
            raise CheckpointError(
                f"The shard index {files[0]!r} lists {len(absent)} tensors that no shard holds "
                f"(first: {absent[:3]}); the shards do not match the index. Re-save the checkpoint."
            )
    if fmt == "tf":
        return "tf", tensors
    if fmt == "flax":  # Flax names ("bert.encoder.layer.0.output.dense.kernel") -> PyTorch's
        state = {}
        for key, array in tensors.items():
            name, layout = flax_key_to_pt(tuple(key.split(".")), array.ndim)
            state[name] = to_pt_layout(array, layout)
        return "pt", state
    return "pt", tensors


def _to_numpy(value: Any) -> np.ndarray:
    """A torch tensor (float32 for floating types, as TensorFlow models are) or array as numpy."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _read_torch_checkpoint(weights_name: str, files: list[str], weights_only: bool) -> dict[str, np.ndarray]:
    try:
        import torch  # noqa: F401  (only to fail early with the install hint)
    except ImportError as exc:
        raise FrameworkNotInstalledError(
            f"Loading {weights_name} (from_pt=True) needs PyTorch: pip install torch. Or save the "
            f"checkpoint as model.safetensors, which loads without PyTorch."
        ) from exc
    from .modeling_utils import load_checkpoint_files

    state = load_checkpoint_files(files, weights_name, weights_only=weights_only)
    return {name: _to_numpy(tensor) for name, tensor in state.items()}


__all__ = [
    "TFPreTrainedModel",
    "get_initializer",
    "shape_list",
    "extended_attention_mask",
    "invert_attention_mask",
    "head_mask_per_layer",
    "masked_mean_cross_entropy",
    "tf_output_class",
    "unpack_inputs",
]
