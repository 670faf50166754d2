"""Shared tests for TensorFlow models: a plugin's suite subclasses these with a tiny config.

A test class sets ``all_model_classes``, ``base_model_class`` and ``fit_model_class`` (a head
trained with Keras ``fit``) and implements :meth:`TFModelTesterMixin.get_config` and
:meth:`TFModelTesterMixin.get_inputs`; pytest then runs every ``test_*`` below for every class.
The checks: output structure, variable names, save/load as ``tf_model.h5``, TensorFlow-format
safetensors and shards, backbone<->head loading, loading reports, shape mismatches, damaged
files, ``tf.function`` and XLA giving the eager outputs, attentions and hidden states, losses, and
Keras ``compile()``/``fit()`` lowering the loss.

Building a TensorFlow model is slow next to a PyTorch one, so each class is built once per test
class and shared by the tests that do not change it. Imports TensorFlow, never torch or jax.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from polyformers.errors import CheckpointError, WeightShapeMismatchError
from polyformers.modeling_outputs import ModelOutput

ATOL = 1e-5


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference between two tensors/arrays, or nested tuples or dicts of them."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"keys {list(a)} != {list(b) if isinstance(b, dict) else b!r}"
        return max((max_abs_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), f"length {len(a)} != {len(b) if isinstance(b, (tuple, list)) else b!r}"
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if a is None or b is None:
        assert a is None and b is None, "one output is None and the other is not"
        return 0.0
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a - b).max()) if a.size else 0.0


def first_output(outputs: Any) -> Any:
    """The main output tensor: logits, start logits, or the last hidden state."""
    for key in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if key in outputs:
            return outputs[key]
    return outputs[0]


def without_loss(outputs: Any) -> dict[str, Any]:
    return {k: v for k, v in outputs.items() if k != "loss"}


class TFModelTesterMixin:
    """Generic tests for every TensorFlow model class of a family."""

    all_model_classes: tuple[type, ...] = ()
    base_model_class: type | None = None
    fit_model_class: type | None = None  # a head trained by test_keras_fit_lowers_loss

    # --- what a family provides --------------------------------------------------------------

    def get_config(self) -> Any:
        raise NotImplementedError

    def get_inputs(self, config: Any, model_class: type, with_labels: bool = False) -> dict[str, np.ndarray]:
        """Numpy inputs for ``model_class`` (batch first); labels included when asked."""
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------------

    def make_model(self, model_class: type, config: Any | None = None) -> Any:
        """A new, built model with seeded random weights."""
        keras_utils = __import__("keras").utils
        keras_utils.set_random_seed(0)
        model = model_class(config or self.get_config())
        model.build_in_name_scope()
        return model

    def model(self, model_class: type) -> Any:
        """The shared model of ``model_class`` (built once per test class; do not modify it)."""
        cache = type(self).__dict__.get("_shared_models")
        if cache is None:
            cache = {}
            setattr(type(self), "_shared_models", cache)
        if model_class not in cache:
            cache[model_class] = self.make_model(model_class)
        return cache[model_class]

    def run(self, model: Any, inputs: dict[str, Any], **kwargs: Any) -> Any:
        return model({k: tf.constant(v) for k, v in inputs.items()}, training=False, **kwargs)

    def _each_class(self) -> tuple[type, ...]:
        assert self.all_model_classes, "set all_model_classes on the test class"
        return self.all_model_classes

    # --- outputs -------------------------------------------------------------------------------

    def test_forward_returns_model_output(self):
        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = self.get_inputs(model.config, model_class)
            outputs = self.run(model, inputs)
            assert isinstance(outputs, ModelOutput), model_class.__name__
            as_tuple = self.run(model, inputs, return_dict=False)
            assert isinstance(as_tuple, tuple), model_class.__name__
            assert max_abs_diff(outputs.to_tuple(), as_tuple) == 0.0, model_class.__name__
            main = first_output(outputs)
            batch = next(iter(inputs.values())).shape[0]
            assert main.shape[0] == batch, model_class.__name__
            assert bool(tf.reduce_all(tf.math.is_finite(main))), model_class.__name__

    def test_dict_inputs_equal_keyword_inputs(self):
        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = self.get_inputs(model.config, model_class)
            as_kwargs = model(**{k: tf.constant(v) for k, v in inputs.items()})
            assert max_abs_diff(first_output(as_kwargs), first_output(self.run(model, inputs))) == 0.0

    def test_variable_names_are_checkpoint_names(self):
        """Variables are named like Transformers' (``bert/.../kernel:0``), once each, nothing left unnamed."""
        for model_class in self._each_class():
            model = self.model(model_class)
            names = list(model._named_variables())
            assert len(names) == len({id(v) for v in model.weights}), f"{model_class.__name__}: a variable is listed twice"
            layer_names = {layer.name for layer in model.layers}
            for name in names:
                assert name.endswith(":0") and name.split("/")[0] in layer_names, f"{model_class.__name__}: {name}"

    def test_attention_and_hidden_state_outputs(self):
        for model_class in self._each_class():
            model = self.model(model_class)
            config = model.config
            outputs = self.run(model, self.get_inputs(config, model_class), output_attentions=True, output_hidden_states=True)
            assert len(outputs.attentions) == config.num_hidden_layers, model_class.__name__
            assert len(outputs.hidden_states) == config.num_hidden_layers + 1, model_class.__name__
            attention = outputs.attentions[0]
            assert attention.shape[1] == config.num_attention_heads and attention.shape[-1] == attention.shape[-2]
            np.testing.assert_allclose(tf.reduce_sum(attention, -1).numpy(), 1.0, atol=1e-5)

    def test_losses_with_labels(self):
        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = self.get_inputs(model.config, model_class, with_labels=True)
            outputs = self.run(model, inputs)
            if model_class is self.base_model_class:
                continue
            assert "loss" in outputs, f"{model_class.__name__} computed no loss from labels"
            assert bool(tf.reduce_all(tf.math.is_finite(outputs.loss))), model_class.__name__

    # --- compilation ---------------------------------------------------------------------------

    def test_tf_function_and_xla_match_eager(self):
        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = {k: tf.constant(v) for k, v in self.get_inputs(model.config, model_class, with_labels=True).items()}
            eager = model(inputs, output_hidden_states=True)
            graph = tf.function(model)(inputs, output_hidden_states=True)
            xla = tf.function(model, jit_compile=True)(inputs, output_hidden_states=True)
            for compiled, how in ((graph, "tf.function"), (xla, "XLA")):
                assert type(compiled) is type(eager), f"{model_class.__name__} under {how} returns {type(compiled).__name__}"
                assert list(compiled.keys()) == list(eager.keys()), how
                for key in eager.keys():
                    assert max_abs_diff(eager[key], compiled[key]) < ATOL, f"{model_class.__name__} {key} under {how}"

    # --- saving and loading --------------------------------------------------------------------

    def test_save_load_h5_round_trip(self, tmp_path):
        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = self.get_inputs(model.config, model_class)
            directory = tmp_path / model_class.__name__
            model.save_pretrained(directory)
            assert sorted(os.listdir(directory)) == ["config.json", "tf_model.h5"], "temporary or extra files left behind"
            with open(directory / "config.json") as f:
                assert json.load(f)["architectures"] == [model_class.__name__.removeprefix("TF")]
            loaded, info = model_class.from_pretrained(directory, output_loading_info=True)
            assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
            assert max_abs_diff(without_loss(self.run(model, inputs)), without_loss(self.run(loaded, inputs))) == 0.0

    def test_h5_layout_is_transformers(self, tmp_path):
        """``tf_model.h5`` has Keras 2's layout: layer groups listing full names with the model's name."""
        import h5py

        model = self.model(self._each_class()[0])
        model.save_pretrained(tmp_path)
        with h5py.File(tmp_path / "tf_model.h5") as f:
            assert f.attrs["backend"] in ("tensorflow", b"tensorflow")
            layers = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
            assert layers == [layer.name for layer in model.layers if layer.weights]
            for layer in layers:
                for name in f[layer].attrs["weight_names"]:
                    name = name.decode() if isinstance(name, bytes) else name
                    assert name.startswith(model.name + "/") and name.endswith(":0") and name in f[layer]

    def test_save_load_safetensors(self, tmp_path):
        from safetensors import safe_open

        for model_class in self._each_class():
            model = self.model(model_class)
            inputs = self.get_inputs(model.config, model_class)
            directory = tmp_path / model_class.__name__
            model.save_pretrained(directory, safe_serialization=True)
            assert sorted(os.listdir(directory)) == ["config.json", "model.safetensors"]
            with safe_open(directory / "model.safetensors", framework="np") as f:
                assert f.metadata() == {"format": "tf"}
                assert sorted(f.keys()) == sorted(model._named_variables())  # no model name, ":0" kept
            loaded, info = model_class.from_pretrained(directory, output_loading_info=True)
            assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
            assert max_abs_diff(without_loss(self.run(model, inputs)), without_loss(self.run(loaded, inputs))) == 0.0

    @pytest.mark.parametrize("safe", [False, True], ids=["h5", "safetensors"])
    def test_save_load_sharded(self, tmp_path, safe):
        model_class = self._each_class()[0]
        model = self.model(model_class)
        inputs = self.get_inputs(model.config, model_class)
        expected = first_output(self.run(model, inputs))
        stem, index = ("model", "model.safetensors.index.json") if safe else ("tf_model", "tf_model.h5.index.json")
        model.save_pretrained(tmp_path, max_shard_size="20KB", safe_serialization=safe)
        shards = [f for f in os.listdir(tmp_path) if f.startswith(stem + "-")]
        assert (tmp_path / index).is_file() and len(shards) > 1
        with open(tmp_path / index) as f:
            weight_map = json.load(f)["weight_map"]
        assert set(weight_map.values()) == set(shards)
        assert all(name.startswith(model.name + "/") for name in weight_map)  # full names, as Transformers writes
        loaded, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        assert max_abs_diff(expected, first_output(self.run(loaded, inputs))) == 0.0
        # Saving unsharded into the same directory removes the old shards and index.
        model.save_pretrained(tmp_path, safe_serialization=safe)
        assert sorted(os.listdir(tmp_path)) == sorted(["config.json", "model.safetensors" if safe else "tf_model.h5"])

    def test_base_to_head_and_back(self, tmp_path):
        """A backbone checkpoint loads into every head; a head checkpoint loads into the backbone."""
        base_class = self.base_model_class
        base = self.model(base_class)
        base.save_pretrained(tmp_path / "base")
        base_values = {name: v.numpy() for name, v in base._named_variables().items()}
        for model_class in self._each_class():
            if model_class is base_class:
                continue
            head, info = model_class.from_pretrained(tmp_path / "base", output_loading_info=True)
            shared = [name for name in head._named_variables() if name in base_values]
            assert shared, f"{model_class.__name__} shares no variable names with {base_class.__name__}"
            for name in shared:
                np.testing.assert_array_equal(head._named_variables()[name].numpy(), base_values[name], err_msg=f"{model_class.__name__}: {name}")
            assert info["unexpected_keys"] == [], f"{model_class.__name__}: {info['unexpected_keys']}"
            for name in info["missing_keys"]:  # the head's own variables: initialised, not left at zero
                if name.endswith("kernel:0"):
                    assert float(tf.reduce_max(tf.abs(head._named_variables()[name]))) > 0, f"{model_class.__name__}: {name} left uninitialised"
            head.save_pretrained(tmp_path / model_class.__name__)
            back = base_class.from_pretrained(tmp_path / model_class.__name__)
            head_values = head._named_variables()
            for name, variable in back._named_variables().items():
                if name in head_values:
                    np.testing.assert_array_equal(variable.numpy(), head_values[name].numpy(), err_msg=f"{model_class.__name__} -> base: {name}")

    def test_missing_and_unexpected_keys_reported(self, tmp_path, caplog):
        from polyformers.tf_h5 import read_tf_h5, write_tf_h5

        model_class = self._each_class()[-1]
        self.model(model_class).save_pretrained(tmp_path)
        weights = read_tf_h5(tmp_path / "tf_model.h5")
        dropped = sorted(weights)[-1]
        del weights[dropped]
        scope = dropped.split("/")[0]
        weights[f"{scope}/some_extra/kernel:0"] = np.zeros(2, np.float32)
        groups: dict[str, dict] = {}
        for name, array in weights.items():
            groups.setdefault(name.split("/")[1], {})[name] = array
        write_tf_h5(tmp_path / "tf_model.h5", groups)
        with caplog.at_level(logging.WARNING):
            loaded, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
        relative = dropped.split("/", 1)[1]
        assert info["missing_keys"] == [relative] and relative in caplog.text
        assert info["unexpected_keys"] == ["some_extra/kernel:0"] and "some_extra/kernel:0" in caplog.text
        assert bool(tf.reduce_all(tf.math.is_finite(first_output(self.run(loaded, self.get_inputs(loaded.config, model_class))))))

    def test_mismatched_sizes(self, tmp_path):
        model_class = self._each_class()[0]
        model = self.model(model_class)
        config = model.config
        model.save_pretrained(tmp_path)
        bigger = self.get_config()
        bigger.vocab_size = config.vocab_size + 3
        with pytest.raises(WeightShapeMismatchError) as excinfo:
            model_class.from_pretrained(tmp_path, config=bigger)
        message = str(excinfo.value)
        assert "ignore_mismatched_sizes=True" in message
        assert f"[{config.vocab_size}, " in message and f"[{bigger.vocab_size}, " in message
        loaded, info = model_class.from_pretrained(tmp_path, config=bigger, ignore_mismatched_sizes=True, output_loading_info=True)
        assert info["mismatched_keys"], "the mismatch must be reported"
        name, old_shape, new_shape = info["mismatched_keys"][0]
        assert tuple(loaded._named_variables()[name].shape) == tuple(new_shape) and old_shape != new_shape

    @pytest.mark.parametrize("safe", [False, True], ids=["h5", "safetensors"])
    def test_truncated_checkpoint_error(self, tmp_path, safe):
        model_class = self._each_class()[0]
        self.model(model_class).save_pretrained(tmp_path, safe_serialization=safe)
        filename = "model.safetensors" if safe else "tf_model.h5"
        path = tmp_path / filename
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError) as excinfo:
            model_class.from_pretrained(tmp_path)
        assert filename in str(excinfo.value) and "truncated" in str(excinfo.value)

    def test_h5_missing_variables_named(self, tmp_path):
        """An h5 file whose layer lists a variable it does not hold: the error names it."""
        import h5py

        model_class = self._each_class()[0]
        model = self.model(model_class)
        model.save_pretrained(tmp_path)
        with h5py.File(tmp_path / "tf_model.h5", "a") as f:
            layer = model.layers[0].name
            victim = f[layer].attrs["weight_names"][-1]
            victim = victim.decode() if isinstance(victim, bytes) else victim
            del f[layer][victim]
        with pytest.raises(CheckpointError) as excinfo:
            model_class.from_pretrained(tmp_path)
        assert victim in str(excinfo.value) and "tf_model.h5" in str(excinfo.value)

    def test_no_weights_error_names_the_fix(self, tmp_path):
        model_class = self._each_class()[0]
        self.model(model_class).config.save_pretrained(tmp_path)
        with pytest.raises(OSError, match="tf_model.h5"):
            model_class.from_pretrained(tmp_path)
        (tmp_path / "pytorch_model.bin").write_bytes(b"")
        with pytest.raises(OSError, match="from_pt=True"):
            model_class.from_pretrained(tmp_path)

    def test_from_config_and_keras_config(self):
        model_class = self._each_class()[0]
        model = self.model(model_class)
        rebuilt = model_class.from_config(model.get_config())
        assert rebuilt.config.to_dict() == model.config.to_dict()
        fresh = model_class.from_config(model.config)
        assert fresh.built and len(fresh.weights) == len(model.weights)

    # --- Keras training ------------------------------------------------------------------------

    def test_keras_fit_lowers_loss(self):
        """``compile()`` without a loss trains on the model's own loss; ``fit`` lowers it."""
        import keras

        model_class = self.fit_model_class or self._each_class()[-1]
        config = self.get_config()
        for attribute in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if hasattr(config, attribute):
                setattr(config, attribute, 0.0)  # deterministic steps, so the loss falls monotonically
        model = self.make_model(model_class, config)
        data = self.get_inputs(config, model_class, with_labels=True)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3))
        history = model.fit(data, epochs=6, batch_size=len(next(iter(data.values()))), verbose=0, shuffle=False)
        losses = history.history["loss"]
        assert losses[-1] < losses[0], f"loss did not go down: {losses}"
        before = model.evaluate(data, verbose=0)
        assert np.isfinite(before)
        predictions = model.predict({k: v for k, v in data.items() if k in ("input_ids", "attention_mask", "token_type_ids")}, verbose=0)
        assert isinstance(predictions, ModelOutput) and isinstance(first_output(predictions), np.ndarray)
