"""The plugin contract: every hook a polyformers plugin may implement.

A plugin is a module named by an entry point in the ``polyformers.plugins`` group. It sets
``POLYFORMERS_PLUGIN_API`` (an int, see :data:`polyformers.plugins.PLUGIN_API_VERSION`) and
implements any of the hooks below, decorated with :data:`hookimpl`::

    from polyformers.hookspecs import hookimpl

    POLYFORMERS_PLUGIN_API = 1

    @hookimpl
    def polyformers_configs():
        return {"bert": "polyformers_bert.configuration_bert:BertConfig"}

Every hook returns *data*: dotted paths ``"package.module:ClassName"``, never imported classes,
so activating a plugin imports only its small hook module. Classes are imported when first used.
Each hook is called once, when the plugin is activated (the first time one of its model types,
tasks or class names is used). All results are collected; none wins over another. Malformed
results disable the plugin with an error naming the plugin, the hook and the offending entry.

Besides the ``polyformers.plugins`` entry point, a distribution lists, as metadata that core reads
without importing anything, which model types (``polyformers.model_types`` group) and public
class names (``polyformers.classes`` group) it provides; each entry's value is the plugin
module. The conformance kit (:mod:`polyformers.testing`) checks that metadata and hooks agree.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import pluggy

PROJECT_NAME = "polyformers"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class ModelSpec(NamedTuple):
    """One model class a plugin provides.

    ``task`` is one of :data:`polyformers.registry.TASKS` (``"base"`` is what ``AutoModel`` loads);
    ``framework`` is ``"pt"``, ``"tf"`` or ``"flax"``; ``path`` is ``"module:ClassName"``.
    """

    model_type: str
    task: str
    framework: str
    path: str


class TokenizerSpec(NamedTuple):
    """The slow (pure Python) and fast (``tokenizers``-backed) tokenizers of a model type.

    Either may be ``None``. ``AutoTokenizer`` prefers ``fast`` unless ``use_fast=False``.
    """

    model_type: str
    slow: str | None
    fast: str | None


class ProcessorSpec(NamedTuple):
    """A preprocessing class of a model type.

    ``kind`` is ``"feature_extractor"``, ``"image_processor"`` or ``"processor"``.
    """

    model_type: str
    kind: str
    path: str


class PipelineTaskSpec(NamedTuple):
    """A pipeline task: its name, the pipeline class, and the model task(s) it can run.

    ``model_tasks`` lists registry tasks (e.g. ``("sequence-classification",)``) whose models the
    pipeline accepts; ``default_model`` is an optional repo id or path used when none is given;
    ``aliases`` are other names for the task (``"sentiment-analysis"``); ``preprocessors`` what
    ``pipeline()`` loads beside the model (``"tokenizer"``, ``"feature_extractor"``,
    ``"image_processor"``).
    """

    task: str
    pipeline: str
    model_tasks: tuple[str, ...]
    default_model: str | None = None
    aliases: tuple[str, ...] = ()
    preprocessors: tuple[str, ...] = ("tokenizer",)


@hookspec
def polyformers_configs() -> Mapping[str, str]:
    """Return the config class of each model type the plugin provides.

    :return: ``{model_type: "module:ConfigClass"}``. The config class subclasses
        :class:`polyformers.PretrainedConfig` and sets ``model_type`` to the same string.
    """


@hookspec
def polyformers_models() -> Sequence[ModelSpec]:
    """Return the model classes the plugin provides, for every framework and task.

    :return: a sequence of :class:`ModelSpec`. The framework named in each spec is imported only
        when that class is first used; a missing framework gives an error naming the extra.
    """


@hookspec
def polyformers_tokenizers() -> Sequence[TokenizerSpec]:
    """Return the tokenizer classes of each model type.

    :return: a sequence of :class:`TokenizerSpec`.
    """


@hookspec
def polyformers_processors() -> Sequence[ProcessorSpec]:
    """Return the feature extractors, image processors and processors of each model type.

    :return: a sequence of :class:`ProcessorSpec`.
    """


@hookspec
def polyformers_pipeline_tasks() -> Sequence[PipelineTaskSpec]:
    """Return the pipeline tasks the plugin adds (core provides the generic ones).

    :return: a sequence of :class:`PipelineTaskSpec`.
    """


@hookspec
def polyformers_framework_extras() -> Mapping[str, str]:
    """Return the pip extra that installs each framework the plugin supports.

    :return: ``{"pt": "torch", "tf": "tf", "flax": "flax"}`` style mapping; used in the error
        message when a framework is missing (``pip install 'polyformers-bert[torch]'``).
    """
