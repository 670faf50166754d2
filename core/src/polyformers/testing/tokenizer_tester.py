"""``TokenizerTesterMixin``: the checks every tokenizer plugin runs on a tiny vocabulary.

A plugin's test class sets ``tokenizer_class`` and ``fast_tokenizer_class`` (either may be None)
and implements :meth:`TokenizerTesterMixin.get_vocab_dir`, which writes a small vocabulary into a
temporary directory. The mixin then checks that the slow and fast tokenizers agree on ids for
texts, pairs, batches and pre-tokenized input; padding, truncation and stride shapes; save/load
round trips (each class, and across classes); decoding; special-token masks; added tokens; and
that bad input raises errors whose messages name the argument.

    class TestBertTokenization(TokenizerTesterMixin):
        tokenizer_class = BertTokenizer
        fast_tokenizer_class = BertTokenizerFast

        def get_vocab_dir(self, tmp_path):
            (tmp_path / "vocab.txt").write_text("\\n".join(TOKENS) + "\\n")
            return tmp_path

Override ``test_texts`` / ``test_pairs`` with texts the tiny vocabulary covers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

MODEL_FIELDS = ("input_ids", "token_type_ids", "attention_mask")


class TokenizerTesterMixin:
    tokenizer_class: type | None = None
    fast_tokenizer_class: type | None = None
    from_pretrained_kwargs: dict[str, Any] = {}

    test_texts: list[str] = [
        "hello world",
        "Hello, World!",
        "unwanted running",
        "",
        "   ",
        "a b c d e f g h i j",
        "lowest, low. wanted?",
    ]
    test_pairs: list[tuple[str, str]] = [
        ("hello world", "running low"),
        ("unwanted", "a b c d e f g h"),
        ("a b c d e f g h i j", "x"),
    ]

    def get_vocab_dir(self, tmp_path: Path) -> str | os.PathLike:
        """Write the tokenizer's files (e.g. ``vocab.txt``) under ``tmp_path``; return the directory."""
        raise NotImplementedError("the test class must implement get_vocab_dir(tmp_path)")

    # --- fixtures ------------------------------------------------------------------------------

    @pytest.fixture
    def vocab_dir(self, tmp_path: Path) -> str:
        path = tmp_path / "vocab"
        path.mkdir()
        return os.fspath(self.get_vocab_dir(path))

    @pytest.fixture
    def slow(self, vocab_dir: str) -> Any:
        if self.tokenizer_class is None:
            pytest.skip("no slow tokenizer class")
        return self.tokenizer_class.from_pretrained(vocab_dir, **self.from_pretrained_kwargs)

    @pytest.fixture
    def fast(self, vocab_dir: str) -> Any:
        if self.fast_tokenizer_class is None:
            pytest.skip("no fast tokenizer class")
        return self.fast_tokenizer_class.from_pretrained(vocab_dir, **self.from_pretrained_kwargs)

    @pytest.fixture
    def both(self, vocab_dir: str) -> list[Any]:
        """Every tokenizer class the plugin has (one or two)."""
        classes = [c for c in (self.tokenizer_class, self.fast_tokenizer_class) if c is not None]
        return [c.from_pretrained(vocab_dir, **self.from_pretrained_kwargs) for c in classes]

    # --- slow and fast agree -------------------------------------------------------------------

    def test_texts_same_ids(self, slow: Any, fast: Any) -> None:
        for text in self.test_texts:
            assert slow.tokenize(text) == fast.tokenize(text), text
            ours, theirs = slow(text), fast(text)
            for field in MODEL_FIELDS:
                assert ours.get(field) == theirs.get(field), (text, field)
            assert slow.encode(text, add_special_tokens=False) == fast.encode(text, add_special_tokens=False)

    def test_pairs_same_ids(self, slow: Any, fast: Any) -> None:
        for first, second in self.test_pairs:
            ours, theirs = slow(first, second), fast(first, second)
            for field in MODEL_FIELDS:
                assert ours.get(field) == theirs.get(field), (first, second, field)
            assert set(ours["token_type_ids"]) <= {0, 1}

    def test_batch_same_as_single(self, both: list[Any]) -> None:
        for tokenizer in both:
            batch = tokenizer(self.test_texts)
            assert batch["input_ids"] == [tokenizer(text)["input_ids"] for text in self.test_texts]
            pairs = tokenizer([a for a, _ in self.test_pairs], [b for _, b in self.test_pairs])
            assert pairs["input_ids"] == [tokenizer(a, b)["input_ids"] for a, b in self.test_pairs]

    def test_pretokenized_same_ids(self, slow: Any, fast: Any) -> None:
        words = [text.split() for text in self.test_texts if text.split()]
        assert slow(words, is_split_into_words=True)["input_ids"] == fast(words, is_split_into_words=True)["input_ids"]
        single = words[0]
        assert slow(single, is_split_into_words=True)["input_ids"] == fast(single, is_split_into_words=True)["input_ids"]
        word_ids = fast(single, is_split_into_words=True).word_ids()
        assert word_ids[0] is None and word_ids[-1] is None  # special tokens
        assert sorted({w for w in word_ids if w is not None}) == list(range(len(single)))

    # --- padding, truncation, stride -----------------------------------------------------------

    def test_padding(self, slow: Any, fast: Any) -> None:
        texts = self.test_texts
        longest = max(len(slow(t)["input_ids"]) for t in texts)
        for kwargs, length in (
            ({"padding": True}, longest),
            ({"padding": "longest"}, longest),
            ({"padding": "max_length", "max_length": longest + 3}, longest + 3),
            ({"padding": True, "pad_to_multiple_of": 8}, -(-longest // 8) * 8),
        ):
            ours, theirs = slow(texts, **kwargs), fast(texts, **kwargs)
            for field in MODEL_FIELDS:
                assert ours[field] == theirs[field], (kwargs, field)
            assert {len(row) for row in ours["input_ids"]} == {length}, kwargs
        for tokenizer in (slow, fast):
            left = tokenizer(texts, padding=True, padding_side="left")
            right = tokenizer(texts, padding=True)
            for l_row, r_row, l_mask in zip(left["input_ids"], right["input_ids"], left["attention_mask"]):
                n_pad = l_mask.count(0)
                assert l_row[:n_pad] == [tokenizer.pad_token_id] * n_pad
                assert l_row[n_pad:] == r_row[: len(r_row) - n_pad]

    def test_truncation(self, slow: Any, fast: Any) -> None:
        text = max(self.test_texts, key=lambda t: len(slow.tokenize(t)))
        for tokenizer in (slow, fast):
            assert len(tokenizer(text, truncation=True, max_length=5)["input_ids"]) == 5
            assert len(tokenizer(text, max_length=5)["input_ids"]) == 5  # bare max_length truncates
        for first, second in self.test_pairs:
            full = len(slow(first, second)["input_ids"])
            for strategy in ("longest_first", "only_first", "only_second"):
                for max_length in (full - 1, full - 2):
                    kwargs = {"truncation": strategy, "max_length": max_length}
                    try:
                        theirs = fast(first, second, **kwargs)
                    except ValueError:
                        continue  # the sequence to cut is too short for this strategy
                    ours = slow(first, second, **kwargs)
                    assert ours["input_ids"] == theirs["input_ids"], (first, second, kwargs)
                    assert len(ours["input_ids"]) <= max_length

    def test_overflow_with_stride(self, slow: Any, fast: Any) -> None:
        text = max(self.test_texts, key=lambda t: len(slow.tokenize(t)))
        n_tokens = len(slow.tokenize(text))
        specials = slow.num_special_tokens_to_add()
        max_length, stride = specials + 3, 1
        assert n_tokens > 3, "test_texts needs a text longer than 3 tokens"

        windows = fast(text, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True, padding=True)
        rows = windows["input_ids"]
        assert len(rows) > 1
        assert {len(row) for row in rows} == {max_length}
        assert windows["overflow_to_sample_mapping"] == [0] * len(rows)
        content = [row[1:-1] for row in rows]  # without [CLS]/[SEP]-like specials at both ends
        if specials == 2:
            for previous, current in zip(content, content[1:]):
                assert previous[-stride:] == current[:stride]

        batch = fast([text, text], truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
        assert batch["overflow_to_sample_mapping"] == [0] * len(rows) + [1] * len(rows)

        single = slow(text, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
        removed = n_tokens - (max_length - specials)
        assert len(single["input_ids"]) == max_length
        assert single["num_truncated_tokens"] == removed
        assert len(single["overflowing_tokens"]) == removed + stride

    def test_return_tensors(self, both: list[Any]) -> None:
        np = pytest.importorskip("numpy")
        for tokenizer in both:
            batch = tokenizer(self.test_texts, padding=True, return_tensors="np")
            assert isinstance(batch["input_ids"], np.ndarray)
            assert batch["input_ids"].shape == batch["attention_mask"].shape
            assert batch.input_ids.shape[0] == len(self.test_texts)
            single = tokenizer(self.test_texts[0], return_tensors="np")
            assert single["input_ids"].shape == (1, len(tokenizer(self.test_texts[0])["input_ids"]))
            with pytest.raises(ValueError, match="padding=True"):
                tokenizer(self.test_texts, return_tensors="np")  # ragged rows

    # --- save / load ---------------------------------------------------------------------------

    def test_save_and_load(self, both: list[Any], tmp_path: Path) -> None:
        classes = [type(t) for t in both]
        for tokenizer in both:
            tokenizer.model_max_length = 42
            directory = tmp_path / type(tokenizer).__name__
            written = tokenizer.save_pretrained(directory)
            assert all(os.path.isfile(path) for path in written)
            assert {"tokenizer_config.json", "special_tokens_map.json"} <= set(os.listdir(directory))
            assert not [name for name in os.listdir(directory) if name.endswith(".tmp")]
            for cls in classes:  # the same class, and across slow <-> fast
                reloaded = cls.from_pretrained(directory)
                assert reloaded.model_max_length == 42
                assert reloaded.special_tokens_map == tokenizer.special_tokens_map
                assert len(reloaded) == len(tokenizer)
                for text in self.test_texts:
                    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"], (cls, text)

    def test_save_and_load_added_tokens(self, both: list[Any], tmp_path: Path) -> None:
        for tokenizer in both:
            tokenizer.add_tokens(["newword"])
            tokenizer.add_special_tokens({"additional_special_tokens": ["<special>"]})
            directory = tmp_path / type(tokenizer).__name__
            tokenizer.save_pretrained(directory)
            reloaded = type(tokenizer).from_pretrained(directory)
            text = f"{self.test_texts[0]} newword <special>"
            assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
            assert reloaded.additional_special_tokens == ["<special>"]
            assert len(reloaded) == len(tokenizer)

    def test_from_pretrained_ignores_loader_flags(self, vocab_dir: str) -> None:
        for cls in (self.tokenizer_class, self.fast_tokenizer_class):
            if cls is not None:
                tokenizer = cls.from_pretrained(vocab_dir, use_fast=True, trust_remote_code=False, model_max_length=7)
                assert tokenizer.model_max_length == 7

    def test_from_pretrained_missing_files(self, tmp_path: Path) -> None:
        for cls in (self.tokenizer_class, self.fast_tokenizer_class):
            if cls is not None:
                with pytest.raises(OSError, match="save_pretrained"):
                    cls.from_pretrained(tmp_path)

    # --- decoding ------------------------------------------------------------------------------

    def test_decode_round_trip(self, both: list[Any]) -> None:
        decoded = []
        for tokenizer in both:
            texts = []
            for text in self.test_texts:
                ids = tokenizer.encode(text)
                texts.append(tokenizer.decode(ids, skip_special_tokens=True))
                # Decoding then encoding again gives the same ids (text may be normalized), as long
                # as nothing became the unknown token, which skip_special_tokens drops.
                if tokenizer.unk_token_id not in ids:
                    assert tokenizer.encode(texts[-1]) == ids, text
                with_special = tokenizer.decode(ids)
                assert all(token in with_special for token in tokenizer.convert_ids_to_tokens(ids) if token in tokenizer.all_special_tokens)
            assert tokenizer.batch_decode([tokenizer.encode(t) for t in self.test_texts], skip_special_tokens=True) == texts
            decoded.append(texts)
        assert all(texts == decoded[0] for texts in decoded)  # slow and fast decode alike

    def test_convert_tokens_and_ids(self, both: list[Any]) -> None:
        for tokenizer in both:
            tokens = tokenizer.tokenize(self.test_texts[0])
            ids = tokenizer.convert_tokens_to_ids(tokens)
            assert tokenizer.convert_ids_to_tokens(ids) == tokens
            assert tokenizer.convert_tokens_to_ids(tokens[0]) == ids[0]
            assert tokenizer.convert_tokens_to_ids("definitely-not-in-the-vocab") == tokenizer.unk_token_id
            assert len(tokenizer) == len(tokenizer.get_vocab())
            assert tokenizer.vocab_size <= len(tokenizer)

    # --- special and added tokens --------------------------------------------------------------

    def test_special_tokens(self, both: list[Any]) -> None:
        for tokenizer in both:
            for name in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token"):
                token = getattr(tokenizer, name)
                if token is not None:
                    assert getattr(tokenizer, f"{name}_id") == tokenizer.convert_tokens_to_ids(token)
                    assert token in tokenizer.all_special_tokens
            assert tokenizer.all_special_ids == tokenizer.convert_tokens_to_ids(tokenizer.all_special_tokens)

    def test_special_tokens_mask(self, slow: Any, fast: Any) -> None:
        first, second = self.test_pairs[0]
        for tokenizer in (slow, fast):
            encoded = tokenizer(first, second, return_special_tokens_mask=True)
            special_ids = set(tokenizer.all_special_ids)
            expected = [int(i in special_ids) for i in encoded["input_ids"]]
            assert encoded["special_tokens_mask"] == expected
            ids = encoded["input_ids"]
            assert tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True) == expected
        assert slow(first, second, return_special_tokens_mask=True)["special_tokens_mask"] == fast(
            first, second, return_special_tokens_mask=True
        )["special_tokens_mask"]

    def test_added_tokens(self, slow: Any, fast: Any) -> None:
        text = f"{self.test_texts[0]} newword{self.test_texts[0]} <special>"
        for tokenizer in (slow, fast):
            size = len(tokenizer)
            assert tokenizer.add_tokens(["newword", "newword"]) == 1
            assert tokenizer.add_special_tokens({"additional_special_tokens": ["<special>"]}) == 1
            assert len(tokenizer) == size + 2
            tokens = tokenizer.tokenize(text)
            assert "newword" in tokens and "<special>" in tokens
            assert tokenizer.convert_tokens_to_ids("newword") == size
            assert "<special>" in tokenizer.all_special_tokens
            assert "<special>" not in tokenizer.decode(tokenizer.encode(text), skip_special_tokens=True)
        assert slow(text)["input_ids"] == fast(text)["input_ids"]

    # --- fast-only features --------------------------------------------------------------------

    def test_offsets_mapping(self, slow: Any, fast: Any) -> None:
        text = self.test_texts[0]
        encoded = fast(text, return_offsets_mapping=True)
        tokens = encoded.tokens()
        for token, (start, end) in zip(tokens, encoded["offset_mapping"]):
            if token in fast.all_special_tokens:
                assert (start, end) == (0, 0)
            else:
                assert text[start:end].lower() == token.removeprefix("##").lower()
        with pytest.raises(NotImplementedError, match="Fast"):
            slow(text, return_offsets_mapping=True)

    def test_backend_settings_restored(self, fast: Any) -> None:
        before = (fast.backend_tokenizer.truncation, fast.backend_tokenizer.padding)
        fast(self.test_texts, padding="max_length", truncation=True, max_length=6)
        assert (fast.backend_tokenizer.truncation, fast.backend_tokenizer.padding) == before

    # --- errors --------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "call, error, message",
        [
            (lambda t: t(None), ValueError, "no text"),
            (lambda t: t(42), TypeError, r"text must be a str.*got int 42"),
            (lambda t: t(["ok", None]), TypeError, r"text\[1\] is None"),
            (lambda t: t([["ok", 3]], is_split_into_words=True), TypeError, r"text\[0\]\[1\]"),
            (lambda t: t("a text", is_split_into_words=True), TypeError, "list of words"),
            (lambda t: t(["a", "b"], ["c"]), ValueError, r"text has 2 texts but text_pair has 1"),
            (lambda t: t(["a", "b"], "c"), TypeError, "text_pair must be a batch"),
            (lambda t: t("a", 5), TypeError, "text_pair must be"),
            (lambda t: t("a", padding="sideways"), ValueError, r"padding='sideways'.*'longest'"),
            (lambda t: t("a", truncation="middle"), ValueError, r"truncation='middle'.*'only_first'"),
            (lambda t: t("a", return_tensors="torchy"), ValueError, r"return_tensors='torchy'.*'pt'"),
            (lambda t: t("a", padding_side="up"), ValueError, "padding_side must be"),
            (lambda t: t("a", max_length=-1), ValueError, "max_length must be"),
            (lambda t: t("a", stride=-2), ValueError, "stride must be"),
            (lambda t: t("a b", padding=True, truncation=True, max_length=6, pad_to_multiple_of=4), ValueError, "multiple"),
            (lambda t: t.decode([[1, 2]]), TypeError, "batch_decode"),
            (lambda t: t.add_tokens([3]), TypeError, "int"),
            (lambda t: t.add_special_tokens({"bogus_token": "x"}), ValueError, "bogus_token"),
        ],
    )
    def test_bad_input(self, both: list[Any], call: Any, error: type, message: str) -> None:
        for tokenizer in both:
            with pytest.raises(error, match=message):
                call(tokenizer)

    def test_padding_without_pad_token(self, both: list[Any]) -> None:
        for tokenizer in both:
            tokenizer.pad_token = None
            with pytest.raises(ValueError, match=r"pad_token.*add_special_tokens"):
                tokenizer(self.test_texts, padding=True)
            assert tokenizer(self.test_texts)["input_ids"]  # no padding asked: fine

    def test_pad_method(self, both: list[Any]) -> None:
        for tokenizer in both:
            examples = [tokenizer(text) for text in self.test_texts]
            padded = tokenizer.pad(examples)
            assert padded["input_ids"] == tokenizer(self.test_texts, padding=True)["input_ids"]
            assert padded["attention_mask"] == tokenizer(self.test_texts, padding=True)["attention_mask"]
            with pytest.raises(ValueError, match="input_ids"):
                tokenizer.pad({"attention_mask": [[1]]})
