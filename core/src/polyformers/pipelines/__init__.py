"""Pipelines: ``pipeline(task, model=...)`` runs a model on raw inputs, as in Transformers.

    from polyformers import pipeline
    fill = pipeline("fill-mask", model="path/to/bert")
    fill("Paris is the [MASK] of France.")

Importing this package imports no framework: PyTorch is imported when a pipeline is built.
``framework="tf"``/``"flax"`` run a TensorFlow or Flax model through the same steps (see
:mod:`polyformers.pipelines.framework_adapter`).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from ..registry import REGISTRY, TASKS
from .registry import PIPELINE_REGISTRY, PipelineRegistry, PipelineTask

logger = logging.getLogger(__name__)

__all__ = ["PIPELINE_REGISTRY", "Pipeline", "PipelineRegistry", "PipelineTask", "pipeline", "run_command"]

# Names that need torch, imported on first access.
_LAZY = {
    "Pipeline": "base",
    "FeatureExtractionPipeline": "text_tasks",
    "SentenceEmbeddingsPipeline": "text_tasks",
    "FillMaskPipeline": "text_tasks",
    "TextClassificationPipeline": "text_tasks",
    "TokenClassificationPipeline": "token_classification",
    "NerPipeline": "token_classification",
    "AggregationStrategy": "token_classification",
    "QuestionAnsweringPipeline": "question_answering",
    "ZeroShotClassificationPipeline": "zero_shot",
    "AutomaticSpeechRecognitionPipeline": "audio",
    "AudioClassificationPipeline": "audio",
    "ObjectDetectionPipeline": "vision",
    "ImageSegmentationPipeline": "vision",
}

# Keyword arguments of pipeline() that go to from_pretrained of the model, config and tokenizer.
_HUB_KWARGS = ("revision", "token", "use_auth_token", "cache_dir", "local_files_only", "force_download", "subfolder")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pipeline(
    task: str | None = None,
    model: str | os.PathLike | Any | None = None,
    tokenizer: str | os.PathLike | Any | None = None,
    feature_extractor: str | os.PathLike | Any | None = None,
    image_processor: str | os.PathLike | Any | None = None,
    framework: str | None = None,
    device: int | str | Any | None = None,
    batch_size: int = 1,
    **kwargs: Any,
) -> Any:
    """Build the pipeline of ``task`` around ``model``, like ``transformers.pipeline``.

    Args:
        task: a task name or alias (``"fill-mask"``, ``"sentiment-analysis"``...); when omitted
            it is read from ``config.architectures`` (``BertForMaskedLM`` -> ``"fill-mask"``).
        model: a local directory or Hub repo id, or a loaded PyTorch model. Required: no default
            model is downloaded.
        tokenizer: a path/repo id or a tokenizer; by default the model's own (tasks that use one).
        feature_extractor: a path/repo id or a feature extractor; by default the model's own
            (audio tasks).
        image_processor: a path/repo id or an image processor; by default the model's own (vision tasks).
        framework: ``"pt"`` (default), ``"tf"`` or ``"flax"``: which framework's model computes.
        device: ``-1``/``"cpu"``, ``0``/``"cuda:0"``, a ``torch.device``; ``None`` keeps the model
            where it is.
        batch_size: inputs per forward pass when a list or generator is given.
        **kwargs: ``model_kwargs`` (a dict for the model's ``from_pretrained``), ``dtype``,
            ``revision``, ``token``...; the rest become the pipeline's default call parameters
            (e.g. ``top_k=2``).

    Returns:
        A :class:`Pipeline` subclass instance.
    """
    if framework not in (None, "pt", "tf", "flax"):
        raise ValueError(f"framework must be 'pt', 'tf' or 'flax', got {framework!r}.")
    kwargs.pop("trust_remote_code", None)  # never honoured: only installed code runs
    hub_kwargs = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
    model_kwargs = dict(kwargs.pop("model_kwargs", None) or {})
    for key in ("dtype", "torch_dtype"):
        if key in kwargs:
            model_kwargs[key] = kwargs.pop(key)
    config = kwargs.pop("config", None)

    if model is None:
        spec = PIPELINE_REGISTRY.check_task(task) if task is not None else None
        default = spec.default_model if spec is not None else None
        if default is not None and _in_local_cache(default, hub_kwargs):
            logger.warning("pipeline(%r): no model given; using the task's default %r from the local cache.", task, default)
            model = default
        else:
            hint = f" (this task's default, {default!r}, is not in the local cache)" if default else ""
            raise ValueError(
                f"pipeline({task!r}) got no model, and polyformers never downloads a default one. "
                f"Pass model= a local directory, a Hub repo id or a loaded model{hint}, e.g. "
                f"pipeline({task or 'fill-mask'!r}, model='path/to/checkpoint')."
            )

    from ..auto import AutoConfig

    model_path = model if isinstance(model, (str, os.PathLike)) else None
    if model_path is not None:
        if config is None or isinstance(config, (str, os.PathLike)):
            config = AutoConfig.from_pretrained(config if config is not None else model_path, **hub_kwargs)
        framework = framework or "pt"
    else:
        framework = _check_model_instance(model, framework)
        config = model.config

    if task is None:
        task = _infer_task(config)
        logger.info("pipeline: no task given; %s in config.architectures means task %r.", config.architectures, task)
    spec = PIPELINE_REGISTRY.check_task(task)

    if model_path is not None:
        model_class = _model_class_for(config, spec, framework)
        if framework != "pt":
            model_kwargs.setdefault("from_pt", True)  # a PyTorch-only checkpoint serves every framework
        model = model_class.from_pretrained(model_path, config=config, **hub_kwargs, **model_kwargs)
    if framework != "pt":
        from .framework_adapter import FrameworkModel

        model = FrameworkModel(model, framework)

    source = model_path if model_path is not None else getattr(config, "name_or_path", "")
    if "tokenizer" in spec.preprocessors:
        tokenizer = _load_preprocessor("tokenizer", tokenizer, source, task, hub_kwargs)
    if "feature_extractor" in spec.preprocessors:
        feature_extractor = _load_preprocessor("feature_extractor", feature_extractor, source, task, hub_kwargs)
    if "image_processor" in spec.preprocessors:
        image_processor = _load_preprocessor("image_processor", image_processor, source, task, hub_kwargs)

    pipeline_class = spec.load_class()
    if feature_extractor is not None:
        kwargs["feature_extractor"] = feature_extractor
    if image_processor is not None:
        kwargs["image_processor"] = image_processor
    return pipeline_class(model=model, tokenizer=tokenizer, task=task, device=device, batch_size=batch_size, **kwargs)


def _load_preprocessor(kind: str, given: Any, source: Any, task: str, hub_kwargs: dict[str, Any]) -> Any:
    """``given`` if it is an instance; else the tokenizer / feature extractor / image processor at ``given`` or ``source``."""
    from ..auto import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer

    auto = {"tokenizer": AutoTokenizer, "feature_extractor": AutoFeatureExtractor, "image_processor": AutoImageProcessor}[kind]
    if given is not None and not isinstance(given, (str, os.PathLike)):
        return given
    path = given if given is not None else source
    if not path:
        raise ValueError(f"pipeline({task!r}) cannot find a {kind}: the model instance has no config.name_or_path. Pass {kind}= a path or a {kind} instance.")
    return auto.from_pretrained(path, **hub_kwargs)


def _in_local_cache(repo_id: str, hub_kwargs: dict[str, Any]) -> bool:
    """True if ``repo_id``'s config.json is in the local hub cache (or ``repo_id`` is a directory)."""
    from ..hub import resolve_file

    lookup = {k: v for k, v in hub_kwargs.items() if k in ("cache_dir", "revision")}
    try:
        return resolve_file(repo_id, "config.json", local_files_only=True, **lookup) is not None
    except OSError:
        return False


def _check_model_instance(model: Any, framework: str | None) -> str:
    """The framework of a loaded model; it must agree with ``framework`` if one was given."""
    from .framework_adapter import framework_of

    actual = framework_of(model)
    if actual is None:
        raise TypeError(f"model must be a path, a Hub repo id or a loaded polyformers model (PyTorch, TensorFlow or Flax), got {type(model).__name__}.")
    if framework is not None and framework != actual:
        raise ValueError(f"framework={framework!r} but the model is a {actual!r} model ({type(model).__name__}); leave framework out or pass {actual!r}.")
    if not hasattr(model, "config"):
        raise TypeError(f"model {type(model).__name__} has no .config; pass a polyformers model.")
    return actual


def _model_task_of(model_type: str, architecture: str) -> str | None:
    """The registry task whose PyTorch class is named ``architecture``; else guessed from the
    Auto class suffix (``...ForMaskedLM`` -> ``masked-lm``, ``...Model`` -> ``base``)."""
    from .. import plugins

    try:
        plugins.ensure_model_type(model_type)
    except Exception as exc:  # an uninstalled plugin only weakens the guess; loading will say why
        logger.debug("pipeline: cannot activate the plugin of %r: %s", model_type, exc)
    for (mt, model_task, framework), by_source in REGISTRY.models.items():
        if mt == model_type and framework == "pt" and any(e.class_name == architecture for e in by_source.values()):
            return model_task
    suffixes = sorted(((auto[len("AutoModel"):], t) for t, auto in TASKS.items() if t != "base"), key=lambda x: -len(x[0]))
    for suffix, model_task in suffixes:
        if architecture.endswith(suffix):
            return model_task
    return "base" if architecture.endswith("Model") else None


def _infer_task(config: Any) -> str:
    architectures = list(getattr(config, "architectures", None) or [])
    for architecture in architectures:
        model_task = _model_task_of(config.model_type, architecture)
        for spec in PIPELINE_REGISTRY.tasks():
            if model_task in spec.model_tasks:
                return spec.task
    raise ValueError(
        f"Cannot infer the task: config.architectures is {architectures!r}, which no pipeline task "
        f"runs. Pass task=, one of {', '.join(PIPELINE_REGISTRY.get_supported_tasks())}."
    )


def _model_class_for(config: Any, spec: PipelineTask, framework: str = "pt") -> type:
    from ..registry import get_model_class

    errors = []
    for model_task in spec.model_tasks:
        try:
            return get_model_class(config.model_type, model_task, framework)
        except ValueError as exc:
            errors.append(str(exc))
    human = {"pt": "PyTorch", "tf": "TensorFlow", "flax": "Flax"}[framework]
    raise ValueError(f"Task {spec.task!r} needs a {human} {' or '.join(TASKS[t] for t in spec.model_tasks)} model, which model type {config.model_type!r} does not provide. " + " ".join(errors))


def run_command(task: str, model: str, inputs: Iterable[str], batch_size: int = 8, **kwargs: Any) -> Iterator[dict | list]:
    """Results of ``task`` on each input, in order, for ``polyformers run``: JSON-ready values.

    ``inputs`` may be any iterable (a list, a file's lines); it is streamed in sorted chunks.
    """
    pipe = pipeline(task, model=model, batch_size=batch_size, **kwargs)
    yield from pipe(iter(inputs))
