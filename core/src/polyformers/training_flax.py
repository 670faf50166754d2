"""Fine-tuning Flax models: a train state, Transformers' losses, compiled steps, checkpoints, data parallelism.

As in Transformers' Flax examples (``run_glue.py``, ``run_ner.py``) the loop is yours to write;
this module gives its parts. Flax models return logits, so the loss is computed here, the way
the PyTorch heads compute it (same numbers on the same weights). A complete loop::

    from polyformers import AutoTokenizer, FlaxAutoModelForSequenceClassification
    from polyformers.data.data_collator import DataCollatorWithPadding
    from polyformers.training_flax import (
        FlaxTrainState, adamw_with_decay_mask, batches, create_learning_rate_fn,
        make_eval_step, make_train_step, restore_train_state, save_train_state,
    )

    path = "sentence-transformers/all-MiniLM-L6-v2"  # or a local directory
    rows = [{"text": "A lovely film.", "label": 1}, {"text": "Dull and far too long.", "label": 0}] * 16
    model = FlaxAutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train = [{**tokenizer(row["text"], truncation=True, max_length=32), "labels": row["label"]} for row in rows]
    # One padded length: every new batch shape compiles the step again.
    collate = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=32, return_tensors="np")

    lr = create_learning_rate_fn(len(train), batch_size=8, epochs=3, warmup_steps=2, learning_rate=1e-4)
    tx = adamw_with_decay_mask(lr, weight_decay=0.01)
    state = FlaxTrainState.create(model, tx, seed=0)
    train_step, eval_step = make_train_step(model, learning_rate_fn=lr), make_eval_step(model)
    for epoch in range(3):
        for batch in batches(train, 8, collate, shuffle=True, seed=epoch, drop_last=True):
            state, metrics = train_step(state, batch)  # {"loss", "grad_norm", "learning_rate"}
        save_train_state(state, f"out/epoch-{epoch}", model=model)  # resumable; loads in PyTorch too
    for batch in batches(train, 8, collate):
        predictions = eval_step(state, batch)["logits"].argmax(-1)

    # Later, resume where the run stopped (same model config, same optimizer):
    state = restore_train_state("out/epoch-2", FlaxTrainState.create(model, tx))

Gradient accumulation is optax's: ``tx = optax.MultiSteps(tx, every_k_schedule=4)``. The step
function stays the same; the parameters change on every 4th call, by the mean of the 4
gradients (one step on a 4x batch, when the loss is a mean over equal-sized batches). A schedule
inside ``tx`` then counts optimizer updates: build it with the effective batch size.

Data parallelism over local devices is GSPMD: put the state replicated and each batch split on
a ``("data",)`` mesh, and the same compiled step runs on every device, gradients averaged by the
compiler::

    mesh = data_parallel_mesh()                # Mesh(jax.local_devices(), ("data",))
    state = replicate(state, mesh)
    for batch in batches(train, 32, collate, drop_last=True):
        state, metrics = train_step(state, shard_batch(batch, mesh))
"""

from __future__ import annotations

import functools
import glob
import inspect
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct, traverse_util
from flax.core.frozen_dict import unfreeze
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .errors import CheckpointError
from .io_utils import atomic_write_text
from .modeling_outputs import (
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

logger = logging.getLogger(__name__)

Batch = Mapping[str, Any]
LossFn = Callable[[Any, Batch], jax.Array]  # (model outputs, batch) -> scalar loss

TRAIN_STATE_NAME = "train_state.msgpack"
TRAIN_STATE_INFO_NAME = "train_state.json"

# Batch keys holding targets rather than model inputs. "label" and "label_ids" (the names of
# datasets' columns and of Transformers' older collators) are read as "labels".
_LABEL_ALIASES = {"label": "labels", "label_ids": "labels"}
_TARGET_KEYS = ("labels", "start_positions", "end_positions", "next_sentence_label")
# Arguments of a model's __call__ that the step functions set themselves.
_STEP_ARGUMENTS = {"self", "params", "dropout_rng", "train", "return_dict", "output_attentions", "output_hidden_states", "past_key_values"}


# --- the train state ------------------------------------------------------------------------------


class FlaxTrainState(struct.PyTreeNode):
    """Everything a training step changes, as one pytree: parameters, optimizer state, step, dropout key.

    ``apply_fn`` (the model's ``__call__``) and ``tx`` (an optax optimizer, or ``optax.MultiSteps``)
    are static: part of the compiled step, not its data, and not saved in checkpoints. The
    compiled step is keyed on them, so build ``tx`` once and reuse it: states made with a new,
    equal ``optax.adamw(...)`` compile the step again. Laid out like
    ``flax.training.train_state.TrainState`` plus the ``dropout_rng`` of Transformers' examples.
    """

    step: jax.Array  # int32 scalar: optimizer updates applied so far
    params: Any
    opt_state: optax.OptState
    dropout_rng: jax.Array  # a raw PRNG key (uint32[2]), split once per step
    apply_fn: Callable[..., Any] = struct.field(pytree_node=False)
    tx: optax.GradientTransformation | optax.MultiSteps = struct.field(pytree_node=False)

    @classmethod
    def create(
        cls, model: Any, tx: optax.GradientTransformation | optax.MultiSteps, seed: int = 0, params: Any = None
    ) -> "FlaxTrainState":
        """The state at step 0 for ``model`` (a ``FlaxPreTrainedModel``) and optimizer ``tx``.

        ``params`` defaults to a copy of ``model.params``: the training step donates the state's
        buffers, and the copy keeps the model's own parameters usable.
        """
        if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
            raise TypeError(f"tx must be an optax optimizer (with init and update), got {type(tx).__name__}; e.g. optax.adamw(5e-5).")
        params = unfreeze(params if params is not None else model.params)
        params = jax.tree_util.tree_map(jnp.array, params)  # jnp.array copies
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            dropout_rng=jax.random.PRNGKey(seed),
            apply_fn=model.__call__,
            tx=tx,
        )

    def apply_gradients(self, *, grads: Any, **changes: Any) -> "FlaxTrainState":
        """One optimizer update: new params and opt_state, ``step + 1``; ``changes`` replace other fields."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **changes)


# --- losses, as Transformers' PyTorch heads compute them -----------------------------------------


def cross_entropy_loss(logits: jax.Array, labels: jax.Array, ignore_index: int = -100) -> jax.Array:
    """PyTorch's ``CrossEntropyLoss(ignore_index=...)``: the mean over positions whose label is kept.

    ``logits`` (..., C), ``labels`` (...) integer classes. Unlike PyTorch, a batch whose labels
    are all ``ignore_index`` gives 0 rather than NaN, so it adds no gradient instead of poisoning
    the parameters.
    """
    labels = jnp.asarray(labels)
    keep = labels != ignore_index  # (...)
    safe_labels = jnp.where(keep, labels, 0).astype(jnp.int32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), safe_labels)  # (...)
    return jnp.where(keep, losses, 0.0).sum() / jnp.maximum(keep.sum(), 1)


def sequence_classification_loss(logits: jax.Array, labels: jax.Array, config: Any) -> jax.Array:
    """The loss of ``*ForSequenceClassification``, chosen by ``config.problem_type`` as in PyTorch.

    Unset, the problem type follows PyTorch's rule: ``"regression"`` (MSE) when
    ``num_labels == 1``, ``"single_label_classification"`` (cross-entropy) for integer labels,
    ``"multi_label_classification"`` (binary cross-entropy with logits) for float labels.
    """
    labels = jnp.asarray(labels)
    problem_type = config.problem_type
    if problem_type is None:
        if config.num_labels == 1:
            problem_type = "regression"
        elif jnp.issubdtype(labels.dtype, jnp.integer):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    logits = logits.astype(jnp.float32)
    if problem_type == "regression":
        if config.num_labels == 1:
            logits, labels = jnp.squeeze(logits), jnp.squeeze(labels)
        return jnp.mean((logits - labels.astype(jnp.float32)) ** 2)
    if problem_type == "single_label_classification":
        return cross_entropy_loss(logits.reshape(-1, config.num_labels), labels.reshape(-1))
    if problem_type == "multi_label_classification":
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)))
    raise ValueError(
        f"config.problem_type is {problem_type!r}; expected 'regression', 'single_label_classification', "
        f"'multi_label_classification' or None (chosen from num_labels and the labels' dtype)."
    )


def _question_answering_loss(start_logits: jax.Array, end_logits: jax.Array, batch: Batch) -> jax.Array:
    # As PyTorch: positions outside the sequence are clamped to its length, which is ignored.
    ignored = start_logits.shape[1]

    def one_end(logits: jax.Array, positions: Any) -> jax.Array:
        positions = jnp.clip(jnp.asarray(positions).reshape(-1), 0, ignored)
        return cross_entropy_loss(logits, positions, ignore_index=ignored)

    return (one_end(start_logits, batch["start_positions"]) + one_end(end_logits, batch["end_positions"])) / 2


def compute_loss(outputs: Any, batch: Batch, config: Any) -> jax.Array:
    """The loss the PyTorch model of the same task returns, from Flax ``outputs`` and the batch's targets.

    ``outputs.loss`` when the model computed one (CTC, DETR); otherwise chosen by the output's
    type: sequence classification by ``config.problem_type``, cross-entropy ignoring -100 for
    token classification, masked LM, multiple choice and next-sentence prediction, shifted for
    causal LM, start/end cross-entropy for question answering (``start_positions``,
    ``end_positions``). Targets are ``batch["labels"]`` (or ``"label"``/``"label_ids"``).
    """
    loss = getattr(outputs, "loss", None)
    if loss is not None:
        return loss
    if isinstance(outputs, tuple):
        raise TypeError("The model returned a tuple; compute_loss needs its ModelOutput: call it with return_dict=True.")
    if isinstance(outputs, QuestionAnsweringModelOutput):
        missing = [k for k in ("start_positions", "end_positions") if k not in batch]
        if missing:
            raise ValueError(f"A question-answering batch needs start_positions and end_positions; it lacks {missing}.")
        return _question_answering_loss(outputs.start_logits, outputs.end_logits, batch)
    labels = _labels_of(batch)
    if labels is None:
        raise ValueError(f"The batch has no labels (keys: {sorted(batch)}); add them under 'labels' to compute a loss.")
    if isinstance(outputs, SequenceClassifierOutput):
        return sequence_classification_loss(outputs.logits, labels, config)
    if isinstance(outputs, CausalLMOutputWithCrossAttentions):  # predict token t+1 from tokens up to t
        return cross_entropy_loss(outputs.logits[:, :-1], jnp.asarray(labels)[:, 1:])
    if isinstance(outputs, (TokenClassifierOutput, MaskedLMOutput, MultipleChoiceModelOutput, NextSentencePredictorOutput)):
        return cross_entropy_loss(outputs.logits, labels)
    raise TypeError(
        f"compute_loss has no loss for {type(outputs).__name__} outputs and they carry none; pass "
        f"loss_fn=lambda outputs, batch: ... to make_train_step / make_eval_step."
    )


def loss_for(model: Any) -> LossFn:
    """``loss_fn(outputs, batch)`` for ``model``: :func:`compute_loss` with the model's config."""
    return functools.partial(compute_loss, config=model.config)


def _labels_of(batch: Batch) -> Any:
    for key in ("labels", *_LABEL_ALIASES):
        if key in batch:
            return batch[key]
    return None


# --- the compiled steps ---------------------------------------------------------------------------


def _input_names(model: Any) -> tuple[set[str], bool]:
    """The inputs ``model.__call__`` takes by name, and whether it takes any keyword (``**kwargs``)."""
    parameters = inspect.signature(type(model).__call__).parameters.values()
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named - _STEP_ARGUMENTS, any(p.kind is p.VAR_KEYWORD for p in parameters)


def _split_batch(batch: Batch, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model inputs, targets)``: targets under their standard names, given to the model too if it takes them."""
    batch = {_LABEL_ALIASES.get(k, k): v for k, v in batch.items()}
    names, any_keyword = _input_names(model)
    targets = {k: v for k, v in batch.items() if k in _TARGET_KEYS}
    inputs = {k: v for k, v in batch.items() if k not in _TARGET_KEYS or k in names}
    unknown = sorted(k for k in inputs if k not in names) if not any_keyword else []
    if unknown:
        raise ValueError(
            f"The batch has keys {type(model).__name__} does not take: {unknown} (it takes {sorted(names)} and the "
            f"targets {list(_TARGET_KEYS)}). Remove those columns before batching, e.g. dataset.remove_columns({unknown})."
        )
    return inputs, targets


def make_train_step(
    model: Any,
    loss_fn: LossFn | None = None,
    learning_rate_fn: Callable[[jax.Array], jax.Array] | None = None,
    donate_state: bool = True,
) -> Callable[[FlaxTrainState, Batch], tuple[FlaxTrainState, dict[str, jax.Array]]]:
    """``train_step(state, batch) -> (new_state, metrics)``, compiled with ``jax.jit``.

    The step runs the model with dropout on (``train=True``, a fresh key split from
    ``state.dropout_rng``), takes the gradient of ``loss_fn(outputs, batch)`` (default
    :func:`loss_for`) and applies it. ``metrics``: ``"loss"`` (before the update),
    ``"grad_norm"`` (global L2 norm) and, with ``learning_rate_fn``, ``"learning_rate"``.

    With ``donate_state`` (the default) the state passed in is consumed, its buffers reused for
    the new one (half the memory): keep only the returned state. Each new batch shape compiles
    once; pad to a few fixed lengths to avoid compiling often.
    """
    loss_fn = loss_fn if loss_fn is not None else loss_for(model)

    def train_step(state: FlaxTrainState, batch: Batch) -> tuple[FlaxTrainState, dict[str, jax.Array]]:
        inputs, targets = _split_batch(batch, model)
        dropout_rng, next_dropout_rng = jax.random.split(state.dropout_rng)

        def loss_of(params: Any) -> jax.Array:
            outputs = state.apply_fn(**inputs, params=params, dropout_rng=dropout_rng, train=True)
            return loss_fn(outputs, targets)

        loss, grads = jax.value_and_grad(loss_of)(state.params)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
        if learning_rate_fn is not None:
            metrics["learning_rate"] = learning_rate_fn(state.step)
        return state.apply_gradients(grads=grads, dropout_rng=next_dropout_rng), metrics

    return _taking_plain_dicts(jax.jit(train_step, donate_argnums=(0,) if donate_state else ()))


def make_eval_step(model: Any, loss_fn: LossFn | None = None) -> Callable[[FlaxTrainState, Batch], dict[str, jax.Array]]:
    """``eval_step(state, batch) -> {"logits", "loss"}``, compiled, dropout off.

    ``"loss"`` only when the batch has targets. Question-answering models give
    ``"start_logits"`` and ``"end_logits"`` instead of ``"logits"``.
    """
    loss_fn = loss_fn if loss_fn is not None else loss_for(model)

    def eval_step(state: FlaxTrainState, batch: Batch) -> dict[str, jax.Array]:
        inputs, targets = _split_batch(batch, model)
        outputs = state.apply_fn(**inputs, params=state.params, train=False)
        if isinstance(outputs, QuestionAnsweringModelOutput):
            result = {"start_logits": outputs.start_logits, "end_logits": outputs.end_logits}
        else:
            result = {"logits": outputs.logits}
        if targets:
            result["loss"] = loss_fn(outputs, targets)
        return result

    return _taking_plain_dicts(jax.jit(eval_step))


def _taking_plain_dicts(compiled: Callable) -> Callable:
    # Batches from tokenizers and collators are BatchEncoding objects, which JAX cannot trace.
    @functools.wraps(compiled)
    def step(state: FlaxTrainState, batch: Batch) -> Any:
        return compiled(state, dict(batch))

    return step


# --- optimizers and learning-rate schedules ------------------------------------------------------


def create_learning_rate_fn(
    train_ds_size: int, batch_size: int, epochs: int, warmup_steps: int, learning_rate: float
) -> optax.Schedule:
    """Linear warmup from 0 to ``learning_rate`` over ``warmup_steps``, then linear decay to 0 at the
    last step, as Transformers' Flax examples (and the PyTorch Trainer's default ``"linear"``)."""
    steps_per_epoch = train_ds_size // batch_size
    total_steps = steps_per_epoch * epochs
    if total_steps <= 0:
        raise ValueError(f"{train_ds_size} examples in batches of {batch_size} make no full step; use a smaller batch size.")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be between 0 and the {total_steps} training steps, got {warmup_steps}.")
    warmup = optax.linear_schedule(init_value=0.0, end_value=learning_rate, transition_steps=warmup_steps)
    decay = optax.linear_schedule(init_value=learning_rate, end_value=0.0, transition_steps=total_steps - warmup_steps)
    return optax.join_schedules(schedules=[warmup, decay], boundaries=[warmup_steps])


def decay_mask(params: Any) -> Any:
    """A tree of bools like ``params``: False for biases and normalisation scales (LayerNorm's
    ``scale``), which weight decay leaves alone, as in Transformers' examples and Trainer."""
    flat = traverse_util.flatten_dict(unfreeze(params))
    return traverse_util.unflatten_dict({path: path[-1] not in ("bias", "scale") for path in flat})


def adamw_with_decay_mask(
    learning_rate: float | optax.Schedule,
    weight_decay: float = 0.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    max_grad_norm: float | None = None,
) -> optax.GradientTransformation:
    """AdamW decaying weights but not biases or LayerNorm scales (:func:`decay_mask`).

    Defaults are ``TrainingArguments``' (``adam_epsilon=1e-8``). ``max_grad_norm`` clips the
    gradients' global norm first, as the Trainer's ``max_grad_norm``.
    """
    tx = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=decay_mask)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), tx) if max_grad_norm is not None else tx


# --- checkpoints ----------------------------------------------------------------------------------


def save_train_state(state: FlaxTrainState, directory: str | os.PathLike, model: Any = None) -> str:
    """Write ``state`` (params, optimizer state, step, dropout key) to ``directory``; return its path.

    The files are ``train_state.msgpack`` (``flax.serialization``, no pickle) and
    ``train_state.json`` (the step); with ``model``, also the weights and config through
    ``model.save_pretrained(..., params=state.params)``, which ``from_pretrained`` of every
    framework reads. Everything is written into a temporary directory beside ``directory``,
    then renamed onto it: a crash leaves the previous checkpoint complete. Overwriting moves the
    old directory aside first and deletes it last; a crash between the two renames leaves it at
    ``.<name>.old-*`` beside, which :func:`restore_train_state` points to.
    """
    directory = os.path.abspath(os.fspath(directory))
    if os.path.isfile(directory):
        raise ValueError(f"{directory!r} is a file; save_train_state writes a directory.")
    parent, name = os.path.split(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    try:
        with open(os.path.join(staging, TRAIN_STATE_NAME), "wb") as f:
            f.write(serialization.to_bytes(jax.device_get(state)))
            f.flush()
            os.fsync(f.fileno())
        atomic_write_text(os.path.join(staging, TRAIN_STATE_INFO_NAME), json.dumps({"step": int(state.step)}, indent=2) + "\n")
        if model is not None:
            model.save_pretrained(staging, params=state.params, safe_serialization=True)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700 directories
        _replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_directory(source: str, target: str) -> None:
    if not os.path.exists(target):
        os.rename(source, target)  # atomic: target appears complete or not at all
        return
    parent, name = os.path.split(target)
    old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
    os.rmdir(old)  # only the unique name is needed
    os.rename(target, old)
    os.rename(source, target)
    shutil.rmtree(old, ignore_errors=True)


def restore_train_state(directory: str | os.PathLike, state_template: FlaxTrainState) -> FlaxTrainState:
    """The state saved by :func:`save_train_state` in ``directory``, laid out as ``state_template``.

    The template (e.g. ``FlaxTrainState.create(model, tx)``) supplies ``apply_fn`` and ``tx``
    and the expected tree: every saved array must match one of its leaves in path, shape and
    dtype, else :class:`~polyformers.errors.CheckpointError` names the file and the differences.
    Restored arrays are placed like the template's (replicated on a mesh if it is).
    """
    directory = os.path.abspath(os.fspath(directory))
    path = os.path.join(directory, TRAIN_STATE_NAME)
    if not os.path.isdir(directory):
        parent, name = os.path.split(directory)
        aside = sorted(glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.old-*")))
        hint = f" An interrupted save left the previous checkpoint at {aside[-1]!r}: rename it to {directory!r}." if aside else ""
        raise CheckpointError(f"No train-state checkpoint at {directory!r}: the directory does not exist.{hint}")
    if not os.path.isfile(path):
        raise CheckpointError(
            f"{path!r} is missing: {directory!r} (holding {sorted(os.listdir(directory))}) was not written by save_train_state."
        )
    with open(path, "rb") as f:
        data = f.read()
    try:
        saved = serialization.msgpack_restore(data)
    except Exception as exc:  # msgpack's errors (ExtraData, ValueError, ...) have no common base
        raise CheckpointError(f"Cannot read {path!r} ({len(data)} bytes): {exc}. The file is truncated or corrupt; use another checkpoint.") from exc

    differences = _tree_differences(_flat(serialization.to_state_dict(state_template)), _flat(saved))
    if differences:
        raise CheckpointError(
            f"{path!r} does not match the template state: {differences}. Build the template from the same model "
            f"config and the same optimizer (tx, with any MultiSteps or clipping) as the run that saved it."
        )
    try:
        restored = serialization.from_state_dict(state_template, saved)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path!r} does not fit the template state: {exc}") from exc
    return jax.tree_util.tree_map(_place_like, restored, state_template)


def _flat(tree: Any) -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {"": tree}
    return traverse_util.flatten_dict(tree, sep="/") if tree else {}


def _tree_differences(expected: dict[str, Any], saved: dict[str, Any]) -> str:
    """What differs between two flattened state dicts, in words ("" if nothing)."""

    def first(names: list[str]) -> str:
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    missing = sorted(k for k in expected if k not in saved)
    unexpected = sorted(k for k in saved if k not in expected)
    mismatched = []
    for key in sorted(expected.keys() & saved.keys()):
        want, got = np.asarray(expected[key]), np.asarray(saved[key])
        if want.shape != got.shape or want.dtype != got.dtype:
            mismatched.append(f"{key} (file {got.dtype}{list(got.shape)}, template {want.dtype}{list(want.shape)})")
    parts = []
    if missing:
        parts.append(f"{len(missing)} template arrays are not in the file ({first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} arrays of the file are not in the template ({first(unexpected)})")
    if mismatched:
        parts.append(f"{len(mismatched)} arrays differ in shape or dtype ({first(mismatched)})")
    return "; ".join(parts)


def _place_like(value: Any, template: Any) -> Any:
    if isinstance(template, jax.Array):
        return jax.device_put(np.asarray(value), template.sharding)
    return value


# --- data parallelism -----------------------------------------------------------------------------


def data_parallel_mesh(devices: Sequence[Any] | None = None, axis_name: str = "data") -> Mesh:
    """A one-axis mesh over ``devices`` (default: every local device) to split batches along."""
    devices = list(devices) if devices is not None else jax.local_devices()
    return Mesh(np.array(devices), (axis_name,))


def shard_batch(batch: Batch, mesh: Mesh) -> dict[str, jax.Array]:
    """Each array of ``batch`` split along its first axis over the mesh's devices."""
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    num_devices = mesh.devices.size
    sharded = {}
    for key, value in batch.items():
        array = value if isinstance(value, jax.Array) else np.asarray(value)
        if array.ndim == 0 or array.shape[0] % num_devices:
            raise ValueError(
                f"batch[{key!r}] has shape {tuple(array.shape)}; its first axis must split evenly over {num_devices} "
                f"devices. Use a batch size divisible by {num_devices} and drop_last=True."
            )
        sharded[key] = jax.device_put(array, sharding)
    return sharded


def replicate(tree: Any, mesh: Mesh) -> Any:
    """``tree`` (e.g. a :class:`FlaxTrainState`) with every array copied to each device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


# --- batches --------------------------------------------------------------------------------------


class _ColumnRows:
    """Rows of a dict of equal-length columns: ``rows[i] == {name: column[i]}``."""

    def __init__(self, columns: Mapping[str, Sequence[Any]]) -> None:
        lengths = {name: len(column) for name, column in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"The columns have different lengths: {lengths}; every column needs one value per example.")
        self.columns = columns
        self.length = next(iter(lengths.values()), 0)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {name: column[index] for name, column in self.columns.items()}


def default_collate(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Stack each key of equal-shaped rows into one array."""
    batch = {}
    for key in rows[0]:
        try:
            batch[key] = np.asarray([row[key] for row in rows])
        except ValueError as exc:
            raise ValueError(
                f"The rows' {key!r} values have different lengths ({exc}); pad them: pass "
                f"collate_fn=DataCollatorWithPadding(tokenizer, return_tensors='np')."
            ) from exc
    return batch


def batches(
    dataset: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | Any,
    batch_size: int,
    collate_fn: Callable[[list[dict[str, Any]]], Batch] | None = None,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Batches of ``dataset``: a list of dicts, a ``datasets.Dataset``, or a dict of columns.

    Each batch is ``collate_fn(rows)`` (default :func:`default_collate`, for rows of equal
    length; pass ``DataCollatorWithPadding(tokenizer, return_tensors="np")`` to pad). With
    ``shuffle`` the order is a permutation drawn from ``seed``: pass the epoch number as seed
    for a new order each epoch. ``drop_last`` leaves out a last, smaller batch (which would
    compile the step once more, and cannot be split over devices).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    rows: Any = _ColumnRows(dataset) if isinstance(dataset, Mapping) else dataset
    collate_fn = collate_fn or default_collate
    count = len(rows)
    order = np.random.default_rng(seed).permutation(count) if shuffle else np.arange(count)
    stop = count - count % batch_size if drop_last else count
    for start in range(0, stop, batch_size):
        yield collate_fn([dict(rows[int(i)]) for i in order[start : start + batch_size]])


__all__ = [
    "FlaxTrainState",
    "cross_entropy_loss",
    "sequence_classification_loss",
    "compute_loss",
    "loss_for",
    "make_train_step",
    "make_eval_step",
    "create_learning_rate_fn",
    "decay_mask",
    "adamw_with_decay_mask",
    "save_train_state",
    "restore_train_state",
    "data_parallel_mesh",
    "shard_batch",
    "replicate",
    "batches",
    "default_collate",
]
