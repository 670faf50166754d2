"""Which pipeline class serves each task: core's generic tasks, ``PIPELINE_REGISTRY.register``
calls, and the tasks plugins declare through the ``polyformers_pipeline_tasks`` hook.

Imports no framework: pipeline classes are dotted paths until a pipeline is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..registry import REGISTRY, TASKS, check_dotted_path


# What prepares a pipeline's inputs, loaded by pipeline() from the model's directory.
PREPROCESSORS = ("tokenizer", "feature_extractor", "image_processor")


@dataclass(frozen=True)
class PipelineTask:
    """One task: its pipeline class (or ``"module:Class"``), the registry model tasks it runs
    (``TASKS`` keys, tried in order when loading a model), an optional default model, aliases."""

    task: str
    pipeline_class: Any
    model_tasks: tuple[str, ...]
    default_model: str | None = None
    aliases: tuple[str, ...] = ()
    source: str = "core"
    # What prepares its inputs, loaded from the model's directory by pipeline(): any of
    # "tokenizer", "feature_extractor", "image_processor".
    preprocessors: tuple[str, ...] = ("tokenizer",)

    def load_class(self) -> type:
        if isinstance(self.pipeline_class, str):
            module_name, name = self.pipeline_class.split(":")
            return getattr(importlib.import_module(module_name), name)
        return self.pipeline_class


CORE_TASKS = (
    PipelineTask("feature-extraction", "polyformers.pipelines.text_tasks:FeatureExtractionPipeline", ("base",)),
    PipelineTask(
        "sentence-embeddings",
        "polyformers.pipelines.text_tasks:SentenceEmbeddingsPipeline",
        ("base",),
        default_model="sentence-transformers/all-MiniLM-L6-v2",  # used only if already in the local hub cache
        aliases=("sentence-similarity",),
    ),
    PipelineTask("fill-mask", "polyformers.pipelines.text_tasks:FillMaskPipeline", ("masked-lm",)),
    PipelineTask("text-classification", "polyformers.pipelines.text_tasks:TextClassificationPipeline", ("sequence-classification",), aliases=("sentiment-analysis",)),
    PipelineTask("token-classification", "polyformers.pipelines.token_classification:TokenClassificationPipeline", ("token-classification",), aliases=("ner",)),
    PipelineTask("question-answering", "polyformers.pipelines.question_answering:QuestionAnsweringPipeline", ("question-answering",)),
    PipelineTask("zero-shot-classification", "polyformers.pipelines.zero_shot:ZeroShotClassificationPipeline", ("sequence-classification",)),
    PipelineTask("automatic-speech-recognition", "polyformers.pipelines.audio:AutomaticSpeechRecognitionPipeline", ("ctc",), preprocessors=("feature_extractor", "tokenizer")),
    PipelineTask("audio-classification", "polyformers.pipelines.audio:AudioClassificationPipeline", ("audio-classification",), preprocessors=("feature_extractor",)),
    PipelineTask("object-detection", "polyformers.pipelines.vision:ObjectDetectionPipeline", ("object-detection",), preprocessors=("image_processor",)),
    PipelineTask("image-segmentation", "polyformers.pipelines.vision:ImageSegmentationPipeline", ("image-segmentation",), preprocessors=("image_processor",)),
)


class PipelineRegistry:
    """Tasks by name. ``register`` is the API for code that is not a plugin; plugins use the hook."""

    def __init__(self, tasks: tuple[PipelineTask, ...] = ()) -> None:
        self._tasks: dict[str, PipelineTask] = {}
        for spec in tasks:
            self._add(spec, overwrite=False)

    def register(self, task: str, pipeline_class: type | str, model_tasks: tuple[str, ...] | list[str] | str, default_model: str | None = None, aliases: tuple[str, ...] | list[str] = (), overwrite: bool = False, preprocessors: tuple[str, ...] | list[str] = ("tokenizer",)) -> None:
        """Register ``pipeline_class`` (a ``Pipeline`` subclass or ``"module:Class"``) for ``task``.

        ``model_tasks`` are registry tasks (``"base"``, ``"masked-lm"``, ...; see
        ``polyformers.registry.TASKS``) whose models the pipeline runs; ``preprocessors`` what
        ``pipeline()`` loads for it (``"tokenizer"``, ``"feature_extractor"``, ``"image_processor"``). Refuses an existing
        task or alias unless ``overwrite=True``.
        """
        if isinstance(model_tasks, str):
            model_tasks = (model_tasks,)
        if isinstance(pipeline_class, str):
            check_dotted_path(pipeline_class, f"PIPELINE_REGISTRY.register({task!r})")
        self._add(PipelineTask(task, pipeline_class, tuple(model_tasks), default_model, tuple(aliases), source="register()", preprocessors=tuple(preprocessors)), overwrite)

    def _add(self, spec: PipelineTask, overwrite: bool) -> None:
        if not isinstance(spec.task, str) or not spec.task:
            raise ValueError(f"A pipeline task name is a non-empty string, got {spec.task!r}.")
        unknown = [t for t in spec.model_tasks if t not in TASKS]
        if not spec.model_tasks or unknown:
            raise ValueError(f"Pipeline task {spec.task!r}: model_tasks must be registry tasks from {', '.join(TASKS)}; got {list(spec.model_tasks)!r}.")
        unknown_pre = [p for p in spec.preprocessors if p not in PREPROCESSORS]
        if unknown_pre:
            raise ValueError(f"Pipeline task {spec.task!r}: preprocessors must be among {', '.join(PREPROCESSORS)}; got {list(spec.preprocessors)!r}.")
        for name in (spec.task, *spec.aliases):
            if name in self._tasks and not overwrite:
                raise ValueError(f"Pipeline task {name!r} is already registered (by {self._tasks[name].source}); pass overwrite=True to replace it.")
        for name in (spec.task, *spec.aliases):
            self._tasks[name] = spec

    def get_supported_tasks(self) -> list[str]:
        """Every task name and alias known now, plugin tasks included."""
        return sorted(set(self._tasks) | set(self._plugin_tasks()))

    def check_task(self, task: str) -> PipelineTask:
        """The task registered under ``task`` or one of its aliases; ValueError listing the known ones."""
        if not isinstance(task, str):
            raise TypeError(f"task must be a string such as 'fill-mask', got {type(task).__name__} {task!r}.")
        if task in self._tasks:
            return self._tasks[task]
        plugin_tasks = self._plugin_tasks(activate=True)
        if task in plugin_tasks:
            return plugin_tasks[task]
        raise ValueError(f"Unknown task {task!r}; available tasks are {', '.join(self.get_supported_tasks())}. Register a new one with PIPELINE_REGISTRY.register(task, pipeline_class, model_tasks).")

    def tasks(self) -> list[PipelineTask]:
        """Each task once (aliases fold into their task), in registration order; plugin tasks last."""
        seen: dict[str, PipelineTask] = {}
        for spec in (*self._tasks.values(), *self._plugin_tasks().values()):
            seen.setdefault(spec.task, spec)
        return list(seen.values())

    @staticmethod
    def _plugin_tasks(activate: bool = False) -> dict[str, PipelineTask]:
        """Tasks registered by plugins; with ``activate`` every plugin is activated first (their
        hooks run only on activation)."""
        if activate:
            from .. import plugins

            plugins.list_plugins(activate=True)
        found: dict[str, PipelineTask] = {}
        for name, by_source in REGISTRY.pipeline_tasks.items():
            for source, spec in by_source.items():
                task = PipelineTask(spec.task, spec.pipeline, tuple(spec.model_tasks), spec.default_model, tuple(spec.aliases), source=source, preprocessors=tuple(spec.preprocessors))
                for key in (name, *task.aliases):
                    found.setdefault(key, task)
        return found


PIPELINE_REGISTRY = PipelineRegistry(CORE_TASKS)
