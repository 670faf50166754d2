"""Data collators: same batches as Transformers 5's collators, and errors that say what to do.

The tokenizer is a tiny WordPiece one built with the ``tokenizers`` library (no plugin needed);
Transformers' ``PreTrainedTokenizerFast`` loads the same ``tokenizer.json`` as the oracle.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from polyformers.data import (
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    DefaultDataCollator,
    default_data_collator,
)
from polyformers.tokenization_utils_fast import PreTrainedTokenizerFast

torch = pytest.importorskip("torch")

SPECIAL = {
    "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"
}
WORDS = [
    "the", "film", "was", "great", "awful", "i", "liked", "it", "a", "lot",
    "play", "##ing", "##ed", "un", "##like", ".", "##d",
]
SENTENCES = [
    "the film was great .",
    "i liked it a lot",
    "unliked playing",
    "the film was awful . i liked playing it a lot . the film was great",
]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> str:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    backend = tokenizers.Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    backend.save(str(path))
    return str(path)


def make_tokenizers(tokenizer_file: str, padding_side: str = "right", **special):
    """Ours and Transformers', from one tokenizer.json."""
    transformers = pytest.importorskip("transformers")
    kwargs = {**SPECIAL, **special, "padding_side": padding_side}
    return (
        PreTrainedTokenizerFast(tokenizer_file=tokenizer_file, **kwargs),
        transformers.PreTrainedTokenizerFast(tokenizer_file=tokenizer_file, **kwargs),
    )


def encode(tokenizer, texts=SENTENCES, **kwargs):
    """One dict of plain lists per example, as a tokenized dataset gives them.

    Tests feed both collators what *our* tokenizer encoded, so only the collators are compared.
    """
    encoded = tokenizer(list(texts), **kwargs)
    return [{key: list(values[i]) for key, values in encoded.items()} for i in range(len(texts))]


def assert_same_batch(ours, theirs):
    assert sorted(ours.keys()) == sorted(theirs.keys())
    for key in theirs:
        mine, ref = ours[key], theirs[key]
        assert type(mine).__module__.split(".")[0] == type(ref).__module__.split(".")[0], key
        mine, ref = np.asarray(mine), np.asarray(ref)
        assert mine.dtype == ref.dtype, (key, mine.dtype, ref.dtype)
        np.testing.assert_array_equal(mine, ref, err_msg=key)


# --- default_data_collator ---------------------------------------------------------------------


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
@pytest.mark.parametrize(
    "features",
    [
        [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "label": 0, "text": "a"},
         {"input_ids": [4, 5, 6], "attention_mask": [1, 1, 0], "label": 1, "text": "b"}],
        [{"input_ids": [1, 2], "label": 0.5}, {"input_ids": [3, 4], "label": 1.5}],
        [{"input_ids": [1, 2], "label_ids": [0, 1]}, {"input_ids": [3, 4], "label_ids": [1, 1]}],
        [{"input_ids": [1, 2], "label_ids": [0.5, 1.0], "extra": None},
         {"input_ids": [3, 4], "label_ids": [1.0, 0.0], "extra": None}],
        [{"input_ids": np.array([1, 2]), "label": np.int64(1)}, {"input_ids": np.array([3, 4]), "label": np.int64(0)}],
    ],
    ids=["int-label", "float-label", "int-label-ids", "float-label-ids", "numpy"],
)
def test_default_data_collator_matches_transformers(features, return_tensors):
    transformers = pytest.importorskip("transformers")
    ours = default_data_collator(features, return_tensors=return_tensors)
    theirs = transformers.default_data_collator(features, return_tensors=return_tensors)
    assert_same_batch(ours, theirs)
    assert_same_batch(DefaultDataCollator(return_tensors=return_tensors)(features), theirs)


def test_default_data_collator_torch_tensors_and_dataclasses():
    transformers = pytest.importorskip("transformers")
    features = [{"input_ids": torch.tensor([1, 2]), "label": torch.tensor(1)} for _ in range(3)]
    assert_same_batch(default_data_collator(features), transformers.default_data_collator(features))

    @dataclasses.dataclass
    class Example:
        input_ids: list
        label: int

    examples = [Example([1, 2], 0), Example([3, 4], 1)]
    assert_same_batch(default_data_collator(examples), transformers.default_data_collator(examples))


def test_default_data_collator_tf():
    tf = pytest.importorskip("tensorflow")
    features = [{"input_ids": [1, 2, 3], "label": 0}, {"input_ids": [4, 5, 6], "label": 1}]
    batch = DefaultDataCollator(return_tensors="tf")(features)
    assert isinstance(batch["input_ids"], tf.Tensor) and batch["labels"].dtype == tf.int64
    np.testing.assert_array_equal(batch["input_ids"].numpy(), [[1, 2, 3], [4, 5, 6]])
    floats = default_data_collator([{"x": [1.0], "label": 0.5}], return_tensors="tf")
    assert floats["labels"].dtype == tf.float32


def test_default_data_collator_errors():
    with pytest.raises(ValueError, match="empty `features` list"):
        default_data_collator([])
    with pytest.raises(TypeError, match="list of examples.*got a dict"):
        default_data_collator({"input_ids": [[1, 2]]})
    with pytest.raises(TypeError, match=r"features\[0\] is a int"):
        default_data_collator([1, 2])
    with pytest.raises(TypeError, match=r"features\[1\] is a list"):
        default_data_collator([{"input_ids": [1]}, [2]])
    with pytest.raises(ValueError, match=r"'input_ids'.*different lengths \[3, 2\].*DataCollatorWithPadding"):
        default_data_collator([{"input_ids": [1, 2, 3]}, {"input_ids": [1, 2]}])
    with pytest.raises(ValueError, match=r"return_tensors='jax' is not supported.*'pt', 'tf', 'np'"):
        default_data_collator([{"input_ids": [1]}], return_tensors="jax")


# --- padding collators -------------------------------------------------------------------------


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
@pytest.mark.parametrize(
    "padding_side, kwargs",
    [
        ("right", {}),
        ("left", {}),
        ("right", {"pad_to_multiple_of": 8}),
        ("left", {"padding": "max_length", "max_length": 24}),
    ],
    ids=["right", "left", "multiple-of-8", "max-length-left"],
)
def test_with_padding_matches_transformers(tokenizer_file, padding_side, kwargs, return_tensors):
    ours_tok, their_tok = make_tokenizers(tokenizer_file, padding_side)
    transformers = pytest.importorskip("transformers")
    features = encode(ours_tok)
    for i, feature in enumerate(features):
        feature["label"] = i % 2
    ours = DataCollatorWithPadding(ours_tok, return_tensors=return_tensors, **kwargs)(features)
    theirs = transformers.DataCollatorWithPadding(their_tok, return_tensors=return_tensors, **kwargs)(features)
    assert "labels" in ours and "label" not in ours
    assert_same_batch(ours, theirs)


def test_with_padding_tf_and_label_ids(tokenizer_file):
    tf = pytest.importorskip("tensorflow")
    ours_tok, _ = make_tokenizers(tokenizer_file)
    features = [dict(f, label_ids=[1, 0]) for f in encode(ours_tok, SENTENCES[:2])]
    batch = DataCollatorWithPadding(ours_tok, return_tensors="tf")(features)
    assert isinstance(batch["input_ids"], tf.Tensor)
    assert batch["input_ids"].shape == (2, 7)
    np.testing.assert_array_equal(batch["labels"].numpy(), [[1, 0], [1, 0]])


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
@pytest.mark.parametrize(
    "padding_side, kwargs",
    [("right", {}), ("left", {}), ("right", {"pad_to_multiple_of": 8, "label_pad_token_id": -1})],
    ids=["right", "left", "multiple-of-8"],
)
def test_token_classification_matches_transformers(tokenizer_file, padding_side, kwargs, return_tensors):
    ours_tok, their_tok = make_tokenizers(tokenizer_file, padding_side)
    transformers = pytest.importorskip("transformers")
    features = encode(ours_tok)
    for feature in features:
        feature["labels"] = [-100] + [i % 3 for i in range(len(feature["input_ids"]) - 2)] + [-100]
    ours = DataCollatorForTokenClassification(ours_tok, return_tensors=return_tensors, **kwargs)(features)
    their_collator = transformers.DataCollatorForTokenClassification(their_tok, return_tensors=return_tensors, **kwargs)
    theirs = their_collator(features)
    assert_same_batch(ours, theirs)
    pad = kwargs.get("label_pad_token_id", -100)
    first_labels = np.asarray(ours["labels"])[0]
    n = len(features[0]["labels"])
    padded_part = first_labels[n:] if padding_side == "right" else first_labels[:-n]
    assert (padded_part == pad).all() and len(padded_part) > 0


def test_token_classification_tf_and_without_labels(tokenizer_file):
    tf = pytest.importorskip("tensorflow")
    ours_tok, their_tok = make_tokenizers(tokenizer_file, "left")
    features = encode(ours_tok, [SENTENCES[0], SENTENCES[3]])  # 7 and 19 tokens
    for feature in features:
        feature["labels"] = [1] * len(feature["input_ids"])
    batch = DataCollatorForTokenClassification(ours_tok, return_tensors="tf")(features)
    assert batch["labels"].dtype == tf.int64
    np.testing.assert_array_equal(batch["labels"].numpy()[0], [-100] * 12 + [1] * 7)
    # Without labels it is DataCollatorWithPadding without the renaming.
    no_labels = [{k: v for k, v in f.items() if k != "labels"} for f in features]
    transformers = pytest.importorskip("transformers")
    assert_same_batch(
        DataCollatorForTokenClassification(ours_tok)(no_labels),
        transformers.DataCollatorForTokenClassification(their_tok)(no_labels),
    )


def test_padding_collators_errors(tokenizer_file):
    ours_tok, _ = make_tokenizers(tokenizer_file)
    for collator in (DataCollatorWithPadding(ours_tok), DataCollatorForTokenClassification(ours_tok)):
        name = type(collator).__name__
        with pytest.raises(ValueError, match=f"{name} got an empty `features` list"):
            collator([])
        with pytest.raises(TypeError, match=rf"{name} expects every example.*features\[0\] is a str.*Tokenize"):
            collator(["the film"])
    with pytest.raises(ValueError, match="return_tensors='torch' is not supported"):
        DataCollatorForTokenClassification(ours_tok)(encode(ours_tok), return_tensors="torch")


# --- language modelling ------------------------------------------------------------------------


def _lm_features(tokenizer, kind: str):
    if kind == "dicts":
        return encode(tokenizer)
    if kind == "special-mask":
        return encode(tokenizer, return_special_tokens_mask=True)
    if kind == "lists":
        return [f["input_ids"] for f in encode(tokenizer)]
    return [torch.tensor(f["input_ids"]) for f in encode(tokenizer)]


@pytest.mark.parametrize("kind", ["dicts", "special-mask", "lists", "tensors"])
@pytest.mark.parametrize(
    "padding_side, kwargs",
    [
        ("right", {}),
        ("left", {"pad_to_multiple_of": 8}),
        ("right", {"mlm_probability": 0.5, "mask_replace_prob": 0.5, "random_replace_prob": 0.3}),
        ("right", {"mlm_probability": 0.6, "mask_replace_prob": 1.0, "random_replace_prob": 0.0}),
    ],
    ids=["default", "left-multiple-of-8", "custom-probs", "mask-only"],
)
def test_mlm_identical_to_transformers_under_one_seed(tokenizer_file, kind, padding_side, kwargs):
    ours_tok, their_tok = make_tokenizers(tokenizer_file, padding_side)
    transformers = pytest.importorskip("transformers")
    ours_collator = DataCollatorForLanguageModeling(ours_tok, **kwargs)
    their_collator = transformers.DataCollatorForLanguageModeling(their_tok, **kwargs)
    total_masked = 0
    for seed in range(5):
        torch.manual_seed(seed)
        ours = ours_collator(_lm_features(ours_tok, kind))
        torch.manual_seed(seed)
        theirs = their_collator(_lm_features(ours_tok, kind))
        assert_same_batch(ours, theirs)
        total_masked += int((ours["labels"] != -100).sum())
    assert total_masked > 0  # the comparison saw masking happen
    # Special tokens and padding are never chosen.
    special = torch.isin(ours["labels"], torch.tensor([0, 2, 3]))
    assert not special.any()


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
def test_mlm_seeded_generator_identical_to_transformers(tokenizer_file, return_tensors):
    ours_tok, their_tok = make_tokenizers(tokenizer_file)
    transformers = pytest.importorskip("transformers")
    kwargs = {"seed": 42, "mlm_probability": 0.4, "return_tensors": return_tensors}
    ours_collator = DataCollatorForLanguageModeling(ours_tok, **kwargs)
    their_collator = transformers.DataCollatorForLanguageModeling(their_tok, **kwargs)
    for _ in range(3):  # the generator advances between batches, in step with theirs
        assert_same_batch(ours_collator(encode(ours_tok)), their_collator(encode(ours_tok)))


def test_mlm_numpy_global_state_identical_to_transformers(tokenizer_file):
    ours_tok, their_tok = make_tokenizers(tokenizer_file)
    transformers = pytest.importorskip("transformers")
    np.random.seed(3)
    ours = DataCollatorForLanguageModeling(ours_tok, return_tensors="np", mlm_probability=0.5)(encode(ours_tok))
    np.random.seed(3)
    their_collator = transformers.DataCollatorForLanguageModeling(their_tok, return_tensors="np", mlm_probability=0.5)
    theirs = their_collator(encode(ours_tok))
    assert_same_batch(ours, theirs)


def test_mlm_statistics(tokenizer_file):
    """80% mask / 10% random / 10% unchanged, never on special tokens or padding."""
    ours_tok, _ = make_tokenizers(tokenizer_file)
    long_text = " ".join(WORDS[:10] * 40)
    features = encode(ours_tok, [long_text] * 50)
    torch.manual_seed(0)
    batch = DataCollatorForLanguageModeling(ours_tok)(features)
    original = torch.tensor([f["input_ids"] for f in features])
    chosen = batch["labels"] != -100
    assert (batch["labels"][chosen] == original[chosen]).all()
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # [CLS], [SEP]
    share = chosen.float().mean().item()
    assert 0.13 < share < 0.17
    masked = (batch["input_ids"] == ours_tok.mask_token_id) & chosen
    unchanged = (batch["input_ids"] == original) & chosen
    assert 0.77 < masked.sum().item() / chosen.sum().item() < 0.83
    assert 0.08 < unchanged.sum().item() / chosen.sum().item() < 0.14  # 10% kept + random draws of the same id
    assert (batch["input_ids"][~chosen] == original[~chosen]).all()


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_causal_lm_labels_match_transformers(tokenizer_file, return_tensors, padding_side):
    ours_tok, their_tok = make_tokenizers(tokenizer_file, padding_side)
    transformers = pytest.importorskip("transformers")
    ours = DataCollatorForLanguageModeling(ours_tok, mlm=False, return_tensors=return_tensors)(encode(ours_tok))
    their_collator = transformers.DataCollatorForLanguageModeling(their_tok, mlm=False, return_tensors=return_tensors)
    theirs = their_collator(encode(ours_tok))
    assert_same_batch(ours, theirs)
    labels, ids = np.asarray(ours["labels"]), np.asarray(ours["input_ids"])
    np.testing.assert_array_equal(labels, np.where(ids == ours_tok.pad_token_id, -100, ids))


def test_whole_word_mask_matches_transformers(tokenizer_file):
    ours_tok, their_tok = make_tokenizers(tokenizer_file)
    transformers = pytest.importorskip("transformers")
    texts = ["unliked playing played", "playing unliked the film"]
    kwargs = {"whole_word_mask": True, "mlm_probability": 0.5, "mask_replace_prob": 1.0, "random_replace_prob": 0.0}
    ours_collator = DataCollatorForLanguageModeling(ours_tok, **kwargs)
    their_collator = transformers.DataCollatorForLanguageModeling(their_tok, **kwargs)
    for seed in range(4):
        torch.manual_seed(seed)
        ours = ours_collator(encode(ours_tok, texts, return_offsets_mapping=True, padding=True))
        torch.manual_seed(seed)
        theirs = their_collator(encode(ours_tok, texts, return_offsets_mapping=True, padding=True))
        assert_same_batch(ours, theirs)
    with pytest.raises(ValueError, match="needs each example's 'offset_mapping'.*return_offsets_mapping=True"):
        ours_collator(encode(ours_tok, texts))


def test_lm_tf_output(tokenizer_file):
    tf = pytest.importorskip("tensorflow")
    ours_tok, _ = make_tokenizers(tokenizer_file)
    batch = DataCollatorForLanguageModeling(ours_tok, return_tensors="tf", seed=0)(encode(ours_tok))
    assert isinstance(batch["input_ids"], tf.Tensor) and isinstance(batch["labels"], tf.Tensor)
    assert batch["labels"].shape == batch["input_ids"].shape == (4, 19)
    causal = DataCollatorForLanguageModeling(ours_tok, mlm=False, return_tensors="tf")(
        encode(ours_tok, ["the film was great", SENTENCES[1]])
    )
    np.testing.assert_array_equal(causal["labels"].numpy()[1], [2, 10, 11, 12, 13, 14, 3])
    np.testing.assert_array_equal(causal["labels"].numpy()[0, -1], -100)


def test_lm_errors(tokenizer_file):
    ours_tok, _ = make_tokenizers(tokenizer_file, mask_token=None)
    with pytest.raises(ValueError, match="mlm=True needs a tokenizer with a mask token.*mlm=False"):
        DataCollatorForLanguageModeling(ours_tok)
    DataCollatorForLanguageModeling(ours_tok, mlm=False)  # causal LM needs no mask token
    ours_tok, _ = make_tokenizers(tokenizer_file)
    with pytest.raises(ValueError, match="mlm_probability must be between 0 and 1, got 1.5"):
        DataCollatorForLanguageModeling(ours_tok, mlm_probability=1.5)
    with pytest.raises(ValueError, match=r"must not exceed 1, got 0.8 \+ 0.3"):
        DataCollatorForLanguageModeling(ours_tok, random_replace_prob=0.3)
    with pytest.raises(ValueError, match="whole_word_mask=True needs mlm=True"):
        DataCollatorForLanguageModeling(ours_tok, mlm=False, whole_word_mask=True)
    collator = DataCollatorForLanguageModeling(ours_tok)
    with pytest.raises(ValueError, match="DataCollatorForLanguageModeling got an empty `features` list"):
        collator([])
    no_pad, _ = make_tokenizers(tokenizer_file, pad_token=None)
    with pytest.raises(ValueError, match=r"has no pad token.*tokenizer.pad_token = tokenizer.eos_token"):
        DataCollatorForLanguageModeling(no_pad)([[2, 5, 3], [2, 3]])


def test_importing_collators_imports_no_framework():
    code = (
        "import sys, polyformers.data.data_collator, polyformers.data\n"
        "import polyformers\n"
        "polyformers.DataCollatorWithPadding, polyformers.default_data_collator\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'jax', 'flax', 'transformers'}))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert completed.stdout.strip() == "[]"
