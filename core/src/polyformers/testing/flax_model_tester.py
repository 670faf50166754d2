"""Shared tests for Flax models: a plugin's suite subclasses :class:`FlaxModelTesterMixin` with a tiny config.

A test class sets ``all_model_classes``, ``base_model_class`` and ``train_model_class`` and
implements :meth:`FlaxModelTesterMixin.get_config`, :meth:`FlaxModelTesterMixin.get_inputs` and
:meth:`FlaxModelTesterMixin.get_train_batch`; pytest then runs every ``test_*`` below. The checks:
output structure, jit against eager execution, explicit dropout keys, bfloat16 computation,
save/load in msgpack, safetensors and shards, backbone<->head loading, loading reports, shape
mismatches, corrupt files, ``_do_init=False``, and a jitted optax training step that lowers the
loss. Imports JAX, Flax and optax only (never PyTorch or TensorFlow).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyformers.conversion import flatten_dict, unflatten_dict
from polyformers.errors import CheckpointError, WeightShapeMismatchError
from polyformers.flax_msgpack import flax_msgpack_restore, flax_msgpack_serialize, read_flax_msgpack, write_flax_msgpack
from polyformers.modeling_outputs import ModelOutput

ATOL = 1e-5


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference between two arrays or nested tuples of arrays."""
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"length {len(a)} != {len(b)}"
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if a is None or b is None:
        assert a is None and b is None, "one output is None and the other is not"
        return 0.0
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a - b).max()) if a.size else 0.0


def first_output(outputs: Any) -> Any:
    """The main output array: logits, start logits, or the last hidden state."""
    for key in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if key in outputs:
            return outputs[key]
    return outputs[0]


def flat_params(params: Any) -> dict[tuple[str, ...], np.ndarray]:
    return {k: np.asarray(v) for k, v in flatten_dict(jax.device_get(params)).items()}


class FlaxModelTesterMixin:
    """Generic tests for every Flax model class of a family."""

    all_model_classes: tuple[type, ...] = ()
    base_model_class: type | None = None
    # A class whose first output is classification logits, trained in test_jitted_train_step.
    train_model_class: type | None = None

    # --- what a family provides --------------------------------------------------------------

    def get_config(self) -> Any:
        raise NotImplementedError

    def get_inputs(self, config: Any, model_class: type) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def get_train_batch(self, config: Any, model_class: type) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """A tiny learnable dataset for ``train_model_class``: (inputs, integer labels)."""
        raise NotImplementedError

    def loss_fn(self, outputs: Any, labels: jax.Array) -> jax.Array:
        import optax

        logits = first_output(outputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels).mean()

    # --- helpers -------------------------------------------------------------------------------

    def make_model(self, model_class: type, config: Any | None = None, **kwargs: Any) -> Any:
        return model_class(config or self.get_config(), seed=0, **kwargs)

    def forward(self, model: Any, inputs: dict[str, Any], **kwargs: Any) -> Any:
        """``model(**inputs)`` with attentions and hidden states on: most tests then share one
        compiled variant per class (each new flag combination or input shape compiles anew)."""
        kwargs.setdefault("output_attentions", True)
        kwargs.setdefault("output_hidden_states", True)
        return model(**inputs, **kwargs)

    def _each_class(self) -> tuple[type, ...]:
        assert self.all_model_classes, "set all_model_classes on the test class"
        return self.all_model_classes

    # --- outputs ---------------------------------------------------------------------------------

    def test_forward_returns_model_output(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            outputs = self.forward(model, inputs)
            assert isinstance(outputs, ModelOutput), model_class.__name__
            as_tuple = self.forward(model, inputs, return_dict=False)
            assert isinstance(as_tuple, tuple), model_class.__name__
            assert max_abs_diff(outputs.to_tuple(), as_tuple) == 0.0, model_class.__name__
            main = first_output(outputs)
            assert isinstance(main, jax.Array) and bool(jnp.isfinite(main).all()), model_class.__name__

    def test_jit_matches_eager(self):
        """The jitted forward computes what running each operation eagerly computes (the backbone and one head)."""
        for model_class in dict.fromkeys((self.base_model_class or self._each_class()[0], self.train_model_class or self._each_class()[-1])):
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            compiled = self.forward(model, inputs)
            with jax.disable_jit():
                eager = self.forward(model, inputs)
            assert max_abs_diff(first_output(compiled), first_output(eager)) < ATOL, model_class.__name__
            assert max_abs_diff(compiled.hidden_states, eager.hidden_states) < ATOL, model_class.__name__

    def test_batching_equivalence(self):
        """Each row of a batch gives the same output alone as inside the batch."""
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            batched = first_output(self.forward(model, inputs))
            for row in range(batched.shape[0]):
                alone = first_output(self.forward(model, {k: v[row : row + 1] for k, v in inputs.items()}))
                assert max_abs_diff(batched[row : row + 1], alone) < ATOL, f"{model_class.__name__} row {row}"

    def test_attention_and_hidden_state_outputs(self):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            outputs = self.forward(model, self.get_inputs(config, model_class))
            assert len(outputs.attentions) == config.num_hidden_layers, model_class.__name__
            assert len(outputs.hidden_states) == config.num_hidden_layers + 1, model_class.__name__
            attention = outputs.attentions[0]
            assert attention.shape[1] == config.num_attention_heads and attention.shape[-1] == attention.shape[-2]
            np.testing.assert_allclose(np.asarray(attention.sum(-1)), 1.0, atol=1e-5)

    # --- randomness and dtypes --------------------------------------------------------------------

    def test_seed_determines_initialisation(self):
        model_class = self._each_class()[0]
        config = self.get_config()
        a, b = flat_params(model_class(config, seed=0).params), flat_params(model_class(config, seed=0).params)
        c = flat_params(model_class(config, seed=1).params)
        assert all(np.array_equal(a[k], b[k]) for k in a)
        assert any(not np.array_equal(a[k], c[k]) for k in a)

    def test_dropout_uses_explicit_rng(self):
        model_class = self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        inputs = self.get_inputs(config, model_class)
        key = jax.random.PRNGKey(0)
        eval_out = first_output(self.forward(model, inputs))
        train_a = first_output(self.forward(model, inputs, train=True, dropout_rng=key))
        train_b = first_output(self.forward(model, inputs, train=True, dropout_rng=key))
        train_c = first_output(self.forward(model, inputs, train=True, dropout_rng=jax.random.PRNGKey(1)))
        assert max_abs_diff(train_a, train_b) == 0.0, "the same key must give the same dropout masks"
        assert max_abs_diff(train_a, train_c) > 1e-4, "another key must give other dropout masks"
        assert max_abs_diff(train_a, eval_out) > 1e-4, "train=True must apply dropout"
        assert max_abs_diff(first_output(self.forward(model, inputs, dropout_rng=key)), eval_out) == 0.0, "train=False ignores the key"
        with pytest.raises(ValueError, match="dropout_rng"):
            self.forward(model, inputs, train=True)

    def test_bfloat16_computation(self, tmp_path):
        model_class = self._each_class()[0]
        config = self.get_config()
        inputs = self.get_inputs(config, model_class)
        full = self.make_model(model_class, config)
        half = self.make_model(model_class, config, dtype=jnp.bfloat16)
        assert half.dtype == jnp.bfloat16
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(half.params)} == {jnp.dtype(jnp.float32)}, "params stay float32"
        reference, result = first_output(self.forward(full, inputs)), first_output(self.forward(half, inputs))
        assert result.dtype == jnp.bfloat16
        scale = float(jnp.abs(reference).max())
        assert max_abs_diff(reference, result) < 0.05 * scale + 0.05, "bfloat16 drifted too far from float32"

        half.params = half.to_bf16(half.params)
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(half.params)} == {jnp.dtype(jnp.bfloat16)}
        assert bool(jnp.isfinite(first_output(self.forward(half, inputs)).astype(jnp.float32)).all())
        full.save_pretrained(tmp_path)
        loaded = model_class.from_pretrained(tmp_path, dtype=jnp.bfloat16)
        assert loaded.dtype == jnp.bfloat16
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(loaded.params)} == {jnp.dtype(jnp.float32)}

    # --- saving and loading -------------------------------------------------------------------------

    def test_save_load_msgpack_round_trip(self, tmp_path):
        for model_class in self._each_class():
            config = self.get_config()
            model = self.make_model(model_class, config)
            inputs = self.get_inputs(config, model_class)
            directory = tmp_path / model_class.__name__
            model.save_pretrained(directory)
            assert sorted(os.listdir(directory)) == ["config.json", "flax_model.msgpack"], "no temporary files may remain"
            with open(directory / "config.json") as f:
                assert json.load(f)["architectures"] == [model_class.__name__.removeprefix("Flax")]
            loaded, info = model_class.from_pretrained(directory, output_loading_info=True)
            assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
            saved, restored = flat_params(model.params), flat_params(loaded.params)
            assert saved.keys() == restored.keys() and all(np.array_equal(saved[k], restored[k]) for k in saved)
            assert max_abs_diff(first_output(self.forward(model, inputs)), first_output(self.forward(loaded, inputs))) == 0.0

    def test_save_load_safetensors(self, tmp_path):
        from safetensors import safe_open

        model_class = self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        inputs = self.get_inputs(config, model_class)
        model.save_pretrained(tmp_path, safe_serialization=True)
        assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
        with safe_open(tmp_path / "model.safetensors", framework="numpy") as f:
            assert f.metadata() == {"format": "flax"}
            assert set(f.keys()) == {".".join(k) for k in flat_params(model.params)}
        loaded = model_class.from_pretrained(tmp_path)
        assert max_abs_diff(first_output(self.forward(model, inputs)), first_output(self.forward(loaded, inputs))) == 0.0

    @pytest.mark.parametrize("safe_serialization", [False, True], ids=["msgpack", "safetensors"])
    def test_save_load_sharded(self, tmp_path, safe_serialization):
        model_class = self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        inputs = self.get_inputs(config, model_class)
        weights, index = ("model.safetensors", "model.safetensors.index.json") if safe_serialization else ("flax_model.msgpack", "flax_model.msgpack.index.json")
        model.save_pretrained(tmp_path, max_shard_size="20KB", safe_serialization=safe_serialization)
        assert (tmp_path / index).is_file() and not (tmp_path / weights).exists()
        shards = [f for f in os.listdir(tmp_path) if f.startswith(weights.split(".")[0] + "-")]
        assert len(shards) > 1
        with open(tmp_path / index) as f:
            weight_map = json.load(f)["weight_map"]
        separator = "." if safe_serialization else "/"  # as Transformers writes each index
        assert set(weight_map) == {separator.join(k) for k in flat_params(model.params)}
        loaded = model_class.from_pretrained(tmp_path)
        assert max_abs_diff(first_output(self.forward(model, inputs)), first_output(self.forward(loaded, inputs))) == 0.0
        model.save_pretrained(tmp_path, safe_serialization=safe_serialization)  # unsharded again: old shards go
        assert sorted(os.listdir(tmp_path)) == ["config.json", weights]

    def test_base_to_head_and_back(self, tmp_path, caplog):
        """A backbone checkpoint loads into every head; a head checkpoint loads into the backbone."""
        base_class = self.base_model_class
        config = self.get_config()
        base = self.make_model(base_class, config)
        base.save_pretrained(tmp_path / "base")
        base_params = flat_params(base.params)
        for model_class in self._each_class():
            if model_class is base_class:
                continue
            head, info = model_class.from_pretrained(tmp_path / "base", output_loading_info=True)
            prefix = head.base_model_prefix
            loaded_backbone = {k[1:]: v for k, v in flat_params(head.params).items() if k[0] == prefix}
            for key, value in loaded_backbone.items():
                if key in base_params:
                    assert np.array_equal(value, base_params[key]), f"{model_class.__name__}: {key} not loaded"
            assert all(not k.startswith(prefix) for k in info["missing_keys"]), info["missing_keys"]

            head.save_pretrained(tmp_path / model_class.__name__)
            with caplog.at_level(logging.WARNING):
                back, info = base_class.from_pretrained(tmp_path / model_class.__name__, output_loading_info=True)
            back_params = flat_params(back.params)
            for key, value in loaded_backbone.items():
                if key in back_params:
                    assert np.array_equal(back_params[key], value), f"{model_class.__name__} -> base: {key}"
            assert all(not k.startswith(prefix + ".") for k in info["unexpected_keys"])

    def test_missing_keys_reported(self, tmp_path, caplog):
        model_class = self._each_class()[-1]
        model = self.make_model(model_class)
        model.save_pretrained(tmp_path)
        flat = flatten_dict(read_flax_msgpack(tmp_path / "flax_model.msgpack"))
        dropped = sorted(flat)[-1]
        del flat[dropped]
        write_flax_msgpack(tmp_path / "flax_model.msgpack", unflatten_dict(flat))
        with caplog.at_level(logging.WARNING):
            loaded, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert ".".join(dropped) in info["missing_keys"]
        assert ".".join(dropped) in caplog.text
        assert set(flatten_dict(loaded.params)) == loaded.required_params, "missing parameters must be initialised"

    def test_unexpected_keys_reported(self, tmp_path, caplog):
        model_class = self._each_class()[0]
        model = self.make_model(model_class)
        model.save_pretrained(tmp_path)
        tree = read_flax_msgpack(tmp_path / "flax_model.msgpack")
        tree["some_extra"] = {"kernel": np.zeros(2, dtype=np.float32)}
        write_flax_msgpack(tmp_path / "flax_model.msgpack", tree)
        with caplog.at_level(logging.WARNING):
            _, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert info["unexpected_keys"] == ["some_extra.kernel"]
        assert "some_extra.kernel" in caplog.text

    def test_mismatched_sizes(self, tmp_path):
        model_class = self._each_class()[0]
        config = self.get_config()
        self.make_model(model_class, config).save_pretrained(tmp_path)
        bigger = self.get_config()
        bigger.vocab_size = config.vocab_size + 3
        with pytest.raises(WeightShapeMismatchError) as excinfo:
            model_class.from_pretrained(tmp_path, config=bigger)
        message = str(excinfo.value)
        assert "ignore_mismatched_sizes=True" in message
        assert str(config.vocab_size) in message and str(bigger.vocab_size) in message
        loaded, info = model_class.from_pretrained(tmp_path, config=bigger, ignore_mismatched_sizes=True, output_loading_info=True)
        assert info["mismatched_keys"], "the mismatch must be reported"
        key, _, new_shape = info["mismatched_keys"][0]
        assert flat_params(loaded.params)[tuple(key.split("."))].shape == tuple(new_shape)

    @pytest.mark.parametrize("safe_serialization", [False, True], ids=["msgpack", "safetensors"])
    def test_truncated_checkpoint_error(self, tmp_path, safe_serialization):
        model_class = self._each_class()[0]
        self.make_model(model_class).save_pretrained(tmp_path, safe_serialization=safe_serialization)
        name = "model.safetensors" if safe_serialization else "flax_model.msgpack"
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError) as excinfo:
            model_class.from_pretrained(tmp_path)
        assert name in str(excinfo.value) and "truncated" in str(excinfo.value)

    def test_missing_weights_error_names_the_fix(self, tmp_path):
        model_class = self._each_class()[0]
        self.get_config().save_pretrained(tmp_path)
        (tmp_path / "pytorch_model.bin").write_bytes(b"")
        with pytest.raises(OSError, match="from_pt=True"):
            model_class.from_pretrained(tmp_path)

    def test_do_init_false(self, tmp_path):
        model_class = self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        inputs = self.get_inputs(config, model_class)
        model.save_pretrained(tmp_path)
        lazy, params = model_class.from_pretrained(tmp_path, _do_init=False)
        with pytest.raises(ValueError, match="_do_init=False"):
            _ = lazy.params
        assert max_abs_diff(first_output(self.forward(model, inputs)), first_output(self.forward(lazy, inputs, params=params))) == 0.0
        assert set(flatten_dict(jax.eval_shape(lambda: params))) == lazy.required_params

    def test_msgpack_codec_matches_flax(self):
        """Our numpy-only msgpack codec writes the bytes flax.serialization writes, and reads them back."""
        from flax import serialization

        model = self.make_model(self._each_class()[0])
        params = jax.device_get(model.params)
        data = serialization.to_bytes(params)
        assert flax_msgpack_serialize(params) == data
        restored = flatten_dict(flax_msgpack_restore(data))
        assert all(np.array_equal(restored[k], v) for k, v in flat_params(params).items())

    def test_msgpack_readable_without_jax(self, tmp_path):
        """read_flax_msgpack works in a process where JAX and Flax cannot be imported (PyTorch's from_flax)."""
        model = self.make_model(self._each_class()[0])
        model.save_pretrained(tmp_path)
        expected = sum(float(np.abs(v).sum()) for v in flat_params(model.params).values())
        script = (
            "import sys; sys.modules['jax'] = sys.modules['flax'] = None\n"
            "from polyformers.flax_msgpack import read_flax_msgpack\n"
            "from polyformers.conversion import flatten_dict\n"
            "import numpy as np\n"
            f"tree = flatten_dict(read_flax_msgpack({str(tmp_path / 'flax_model.msgpack')!r}))\n"
            "print(len(tree), sum(float(np.abs(v).sum()) for v in tree.values()))\n"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        count, total = result.stdout.split()
        assert int(count) == len(model.required_params) and abs(float(total) - expected) < 1e-3 * expected

    # --- training --------------------------------------------------------------------------------

    def test_jitted_train_step_lowers_loss(self):
        """A jitted optax step (with dropout keys split per step) fits a tiny dataset."""
        optax = pytest.importorskip("optax")

        model_class = self.train_model_class or self._each_class()[0]
        config = self.get_config()
        model = self.make_model(model_class, config)
        inputs, labels = self.get_train_batch(config, model_class)
        inputs = {k: jnp.asarray(v) for k, v in inputs.items()}
        labels = jnp.asarray(labels)
        optimizer = optax.adam(3e-3)

        def loss(params, dropout_rng):
            return self.loss_fn(model(**inputs, params=params, dropout_rng=dropout_rng, train=True), labels)

        @jax.jit
        def step(params, opt_state, rng):
            rng, dropout_rng = jax.random.split(rng)
            value, grads = jax.value_and_grad(loss)(params, dropout_rng)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, rng, value

        params, rng = model.params, jax.random.PRNGKey(0)
        opt_state = optimizer.init(params)
        initial = float(self.loss_fn(model(**inputs), labels))
        for _ in range(25):
            params, opt_state, rng, _ = step(params, opt_state, rng)
        final = float(self.loss_fn(model(**inputs, params=params), labels))
        assert final < 0.5 * initial, f"loss went from {initial:.4f} to {final:.4f}"
