"""The vision pipelines on DETR: ``object-detection`` and ``image-segmentation``, against Transformers 5.x.

Checkpoints are written by Transformers inside the test (tiny random DETRs with a native ResNet;
``init_std=0.5`` makes the random queries confident enough to survive the thresholds), images are
coloured rectangles saved as PNG. Our pipelines must give Transformers' boxes, labels, scores and
masks exactly, from file paths, PIL images and NumPy arrays.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from polyformers import pipeline
from polyformers.errors import ImageInputError

transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

TINY = dict(
    d_model=16, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=20, decoder_ffn_dim=20, encoder_attention_heads=8,
    decoder_attention_heads=8, num_queries=5, num_labels=3, dropout=0.0, init_std=0.5,
)
RESNET = dict(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic", out_features=["stage1", "stage2", "stage3", "stage4"])


def _save(path, class_name: str) -> str:
    torch.manual_seed(0)
    config = transformers.DetrConfig(backbone_config=transformers.ResNetConfig(**RESNET), **TINY)
    getattr(transformers, class_name)(config).eval().save_pretrained(path)
    transformers.DetrImageProcessor(size={"shortest_edge": 96, "longest_edge": 128}).save_pretrained(path)
    return str(path)


def _rectangles(height: int = 90, width: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 255, np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
        image[y : y + height // 3, x : x + width // 3] = rng.integers(0, 255, 3)
    return image


@pytest.fixture(scope="module")
def detection_dir(tmp_path_factory) -> str:
    return _save(tmp_path_factory.mktemp("detr") / "det", "DetrForObjectDetection")


@pytest.fixture(scope="module")
def segmentation_dir(tmp_path_factory) -> str:
    return _save(tmp_path_factory.mktemp("detr") / "seg", "DetrForSegmentation")


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("images") / "rectangles.png"
    Image.fromarray(_rectangles()).save(path)
    return str(path)


def _hf_image_processor(path: str):
    return transformers.DetrImageProcessorPil.from_pretrained(path)  # the PIL backend: no torchvision here


def test_object_detection_equals_transformers(detection_dir, image_file):
    ours = pipeline("object-detection", model=detection_dir)
    theirs = transformers.pipeline("object-detection", model=detection_dir, image_processor=_hf_image_processor(detection_dir))
    for threshold in (0.0, 0.5, 0.9):
        result, expected = ours(image_file, threshold=threshold), theirs(image_file, threshold=threshold)
        assert [(r["label"], r["box"]) for r in result] == [(e["label"], e["box"]) for e in expected]
        np.testing.assert_allclose([r["score"] for r in result], [e["score"] for e in expected], atol=1e-6)
    assert ours(image_file, threshold=0.0)  # something was detected: the comparison is not vacuous
    assert ours(image_file) == ours(Image.open(image_file)) == ours(_rectangles())  # path, PIL, array


@pytest.mark.parametrize("subtask", ["panoptic", "instance", "semantic"])
def test_image_segmentation_equals_transformers(segmentation_dir, image_file, subtask):
    # Bit-equal masks need the same kernels as Transformers: the plain path. The default
    # (oneDNN-prepacked) path is checked against it below, within the optimised path's tolerance.
    ours = pipeline("image-segmentation", model=segmentation_dir, optimize_for_inference=False)
    theirs = transformers.pipeline("image-segmentation", model=segmentation_dir, image_processor=_hf_image_processor(segmentation_dir))
    result, expected = ours(image_file, subtask=subtask, threshold=0.0), theirs(image_file, subtask=subtask, threshold=0.0)
    assert result and len(result) == len(expected)
    for r, e in zip(result, expected):
        assert r["label"] == e["label"]
        assert (r["score"] is None and e["score"] is None) or abs(r["score"] - e["score"]) < 1e-6
        assert r["mask"].mode == "L" and r["mask"].size == (120, 90)
        assert np.array_equal(np.asarray(r["mask"]), np.asarray(e["mask"]))
    optimised = pipeline("image-segmentation", model=segmentation_dir)(image_file, subtask=subtask, threshold=0.0)
    assert [r["label"] for r in optimised] == [r["label"] for r in result]
    for r, o in zip(result, optimised):
        assert (r["score"] is None and o["score"] is None) or abs(r["score"] - o["score"]) < 1e-4


def test_batches_like_one_by_one_and_task_inference(detection_dir):
    pipe = pipeline(model=detection_dir)  # the task from config.architectures
    assert type(pipe).__name__ == "ObjectDetectionPipeline"
    images = [_rectangles(seed=s) for s in range(3)]
    # Same-size images: one batched forward, equal to one-by-one up to float summation order.
    for batched, single in zip(pipe(images, batch_size=3, threshold=0.0), [pipe(x, threshold=0.0) for x in images]):
        assert [r["label"] for r in batched] == [r["label"] for r in single]
        np.testing.assert_allclose([r["score"] for r in batched], [r["score"] for r in single], atol=1e-5)
        np.testing.assert_allclose([list(r["box"].values()) for r in batched], [list(r["box"].values()) for r in single], atol=1)


def test_grayscale_and_rgba_are_converted(detection_dir, tmp_path):
    pipe = pipeline("object-detection", model=detection_dir)
    rgb = Image.fromarray(_rectangles())
    gray, rgba = tmp_path / "gray.png", tmp_path / "rgba.png"
    rgb.convert("L").save(gray)
    rgb.convert("RGBA").save(rgba)
    assert pipe(str(gray), threshold=0.0) == pipe(rgb.convert("L").convert("RGB"), threshold=0.0)
    assert pipe(str(rgba), threshold=0.0) == pipe(rgb, threshold=0.0)  # opaque alpha: the same pixels


def test_bad_images_raise_typed_errors(detection_dir, tmp_path):
    pipe = pipeline("object-detection", model=detection_dir)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    truncated = tmp_path / "truncated.png"
    Image.fromarray(_rectangles()).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 megapixels, a few kB on disk
    for bad, message in (
        (str(corrupt), "not an image file|corrupt"),
        (str(truncated), "corrupt or truncated"),
        (str(bomb), "decompression bomb"),
        (str(tmp_path / "missing.png"), "does not exist"),
        (np.zeros((0, 4, 3), np.uint8), "empty axis"),
        (np.zeros((2, 3, 4, 5), np.uint8), r"\(H, W\)"),
    ):
        with pytest.raises(ImageInputError, match=message):
            pipe(bad)
    with pytest.raises(TypeError, match="expects an image"):
        pipe(3)
    with pytest.raises(ValueError, match="threshold"):
        pipe(_rectangles(), threshold=2)


def test_cli_prints_detections(detection_dir, image_file):
    completed = subprocess.run(
        [sys.executable, "-m", "polyformers.cli", "run", "object-detection", "--model", detection_dir, "--threshold", "0.0", image_file],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == pipeline("object-detection", model=detection_dir)(image_file, threshold=0.0)


@pytest.mark.parametrize("framework", ["tf", "flax"])
def test_detection_and_segmentation_in_tensorflow_and_flax(detection_dir, segmentation_dir, image_file, framework):
    pytest.importorskip("tensorflow" if framework == "tf" else "flax")
    for task, path, call in (("object-detection", detection_dir, {"threshold": 0.0}), ("image-segmentation", segmentation_dir, {"subtask": "panoptic", "threshold": 0.0})):
        ours, other = pipeline(task, model=path), pipeline(task, model=path, framework=framework)
        result, expected = other(image_file, **call), ours(image_file, **call)
        assert result and [r["label"] for r in result] == [e["label"] for e in expected]
        np.testing.assert_allclose([r["score"] for r in result], [e["score"] for e in expected], atol=1e-5)
        if task == "object-detection":
            assert [r["box"] for r in result] == [e["box"] for e in expected]
        else:
            # Masks are thresholded logits: a pixel within float noise of the threshold may flip.
            for r, e in zip(result, expected):
                assert np.mean(np.asarray(r["mask"]) != np.asarray(e["mask"])) < 1e-3
