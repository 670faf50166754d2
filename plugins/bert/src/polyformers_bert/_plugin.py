"""The polyformers-bert plugin: what it registers with the polyformers core.

This module is all that activating the plugin imports: it names classes by dotted path, and each
is imported only when first used.
"""

from __future__ import annotations

from polyformers.hookspecs import ModelSpec, TokenizerSpec, hookimpl

POLYFORMERS_PLUGIN_API = 1

_PT_MODELS = {
    "base": "BertModel",
    "pretraining": "BertForPreTraining",
    "causal-lm": "BertLMHeadModel",
    "masked-lm": "BertForMaskedLM",
    "next-sentence-prediction": "BertForNextSentencePrediction",
    "sequence-classification": "BertForSequenceClassification",
    "multiple-choice": "BertForMultipleChoice",
    "token-classification": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering",
}

# TensorFlow and Flax class names carry a prefix (Transformers' convention); Flax calls its
# causal LM FlaxBertForCausalLM rather than BertLMHeadModel.
_TF_MODELS = {task: "TF" + name for task, name in _PT_MODELS.items()}
_FLAX_MODELS = {task: "Flax" + name for task, name in _PT_MODELS.items()} | {"causal-lm": "FlaxBertForCausalLM"}


@hookimpl
def polyformers_configs():
    return {"bert": "polyformers_bert.configuration_bert:BertConfig"}


@hookimpl
def polyformers_models():
    return [
        *(ModelSpec("bert", task, "pt", f"polyformers_bert.modeling_bert:{name}") for task, name in _PT_MODELS.items()),
        *(ModelSpec("bert", task, "tf", f"polyformers_bert.modeling_tf_bert:{name}") for task, name in _TF_MODELS.items()),
        *(ModelSpec("bert", task, "flax", f"polyformers_bert.modeling_flax_bert:{name}") for task, name in _FLAX_MODELS.items()),
    ]


@hookimpl
def polyformers_tokenizers():
    return [
        TokenizerSpec(
            "bert",
            slow="polyformers_bert.tokenization_bert:BertTokenizer",
            fast="polyformers_bert.tokenization_bert_fast:BertTokenizerFast",
        )
    ]


@hookimpl
def polyformers_framework_extras():
    return {"pt": "torch", "tf": "tf", "flax": "flax"}
