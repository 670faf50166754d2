"""DetrImageProcessor against Transformers 5.x's PIL ``DetrImageProcessorPil`` (the oracle).

Pixel values, pixel masks and labels must be identical (same dtype, same bits) on random images
of several sizes, layouts and modes, with COCO detection and panoptic annotations; the four
post-processing methods must give the same results on the same random model outputs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from polyformers import AutoImageProcessor
from polyformers.errors import ImageInputError
from polyformers_detr.image_processing_detr import DetrImageProcessor

PIL_Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")
image_processing_pil_detr = pytest.importorskip("transformers.models.detr.image_processing_pil_detr")
Reference = image_processing_pil_detr.DetrImageProcessorPil

FIXTURES = Path(__file__).parent / "fixtures"
SIZES = [(30, 40), (57, 23), (64, 64), (17, 90)]


@pytest.fixture(autouse=True)
def _quiet_transformers():
    logging.getLogger("transformers").setLevel(logging.ERROR)


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _detection_annotations(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        objects = [
            {"bbox": [float(x) for x in rng.uniform(0, 30, 4)], "category_id": int(rng.integers(0, 91)), "area": float(rng.uniform(1, 500)), "iscrowd": 0}
            for _ in range(int(rng.integers(0, 5)))
        ]
        objects.append({"bbox": [2.0, 3.0, 5.0, 0.0], "category_id": 1, "area": 0.0})  # empty: dropped
        objects.append({"bbox": [1.0, 1.0, 4.0, 4.0], "category_id": 2, "area": 16.0, "iscrowd": 1})  # crowd: dropped
        objects.append({"bbox": [-5.0, -5.0, 500.0, 10.0], "category_id": 7, "area": 99.0})  # clipped
        out.append({"image_id": i, "annotations": objects})
    return out


def _assert_same(ours, theirs):
    """Two BatchFeatures (or lists / arrays / tensors) hold the same keys, values and dtypes."""
    if hasattr(theirs, "keys"):  # a dict, or Transformers' BatchFeature (a UserDict)
        assert sorted(ours.keys()) == sorted(theirs.keys())
        for key in theirs:
            _assert_same(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)) and theirs and not isinstance(theirs[0], (int, float)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b)
    elif isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.dtype == theirs.dtype
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    else:
        a, b = np.asarray(ours), np.asarray(theirs)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"size": {"height": 32, "width": 48}},
        {"size": {"shortest_edge": 20, "longest_edge": 50}},
        {"size": {"max_height": 40, "max_width": 40}},
        {"do_pad": False},
        {"pad_size": {"height": 1400, "width": 1400}},
        {"do_normalize": False},
        {"do_rescale": False, "do_normalize": False, "size": {"height": 20, "width": 20}},
        {"do_resize": False},
        {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.2, 0.3, 0.4], "resample": 3},
    ],
)
@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_detection_matches_transformers(kwargs, return_tensors):
    if return_tensors is not None and not kwargs.get("do_pad", True):
        pytest.skip("unpadded images of several sizes cannot be stacked (in either library)")
    images = [PIL_Image.fromarray(_rgb(h, w, i)) for i, (h, w) in enumerate(SIZES)]
    annotations = _detection_annotations(len(images))
    theirs = Reference(**kwargs)(images, annotations=annotations, return_tensors=return_tensors)
    ours = DetrImageProcessor(**kwargs)(images, annotations=annotations, return_tensors=return_tensors)
    _assert_same(ours, theirs)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda a: a, id="numpy-hwc-uint8"),
        pytest.param(lambda a: np.ascontiguousarray(np.moveaxis(a, -1, 0)), id="numpy-chw-uint8"),
        pytest.param(lambda a: a.astype(np.float32) / 255, id="numpy-hwc-float-unit"),
        pytest.param(lambda a: torch.from_numpy(np.moveaxis(a, -1, 0).copy()), id="torch-chw"),
    ],
)
def test_array_inputs_match_transformers(make):
    images = [make(_rgb(h, w, i)) for i, (h, w) in enumerate(SIZES)]
    annotations = _detection_annotations(len(images), seed=1)
    _assert_same(
        DetrImageProcessor()(images, annotations=annotations, return_tensors="np"),
        Reference()(images, annotations=annotations, return_tensors="np"),
    )


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_grayscale_and_transparent_pil_images_become_rgb(mode):
    """Transformers crashes on these unless asked to convert (do_convert_rgb=True); we always convert."""
    base = [PIL_Image.fromarray(np.random.default_rng(i).integers(0, 256, (h, w, 4), dtype=np.uint8), mode="RGBA") for i, (h, w) in enumerate(SIZES)]
    images = [image.convert(mode) for image in base]
    ours = DetrImageProcessor()(images, return_tensors="pt")
    theirs = Reference()(images, return_tensors="pt", do_convert_rgb=True)
    _assert_same(ours, theirs)
    _assert_same(DetrImageProcessor()(images, return_tensors="pt", do_convert_rgb=True), theirs)
    assert ours["pixel_values"].shape[1] == 3


def test_grayscale_and_rgba_arrays_become_rgb():
    gray = [np.random.default_rng(i).integers(0, 256, (h, w), dtype=np.uint8) for i, (h, w) in enumerate(SIZES)]
    _assert_same(DetrImageProcessor()(gray, return_tensors="np"), Reference()([np.repeat(g[..., None], 3, -1) for g in gray], return_tensors="np"))
    rgba = [np.random.default_rng(i).integers(0, 256, (h, w, 4), dtype=np.uint8) for i, (h, w) in enumerate(SIZES)]
    _assert_same(DetrImageProcessor()(rgba, return_tensors="np"), Reference()(rgba, return_tensors="np", do_convert_rgb=True))


def test_file_paths_are_loaded(tmp_path):
    paths = []
    for i, (h, w) in enumerate(SIZES[:2]):
        PIL_Image.fromarray(_rgb(h, w, i)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    images = [PIL_Image.open(p) for p in paths]
    _assert_same(DetrImageProcessor()(paths, return_tensors="np"), Reference()(images, return_tensors="np"))


def _panoptic_case(tmp_path, n=2):
    images, annotations = [], []
    for i, (h, w) in enumerate(SIZES[:n]):
        rng = np.random.default_rng(10 + i)
        images.append(PIL_Image.fromarray(_rgb(h, w, i)))
        segment_ids = [int(x) for x in rng.choice(np.arange(1, 2**20), size=3, replace=False)]
        id_map = np.zeros((h, w), dtype=np.int64)
        id_map[: h // 2, : w // 2] = segment_ids[0]
        id_map[h // 2 :, :] = segment_ids[1]
        id_map[: h // 3, w // 2 :] = segment_ids[2]
        png = np.stack([id_map % 256, (id_map // 256) % 256, id_map // 65536], axis=-1).astype(np.uint8)
        PIL_Image.fromarray(png).save(tmp_path / f"{i}.png")
        segments = [{"id": sid, "category_id": int(rng.integers(1, 200)), "iscrowd": 0, "area": float((id_map == sid).sum())} for sid in segment_ids]
        annotations.append({"image_id": i, "file_name": f"{i}.png", "segments_info": segments})
    return images, annotations


@pytest.mark.parametrize("kwargs", [{}, {"size": {"shortest_edge": 40, "longest_edge": 70}}, {"do_normalize": False}])
def test_panoptic_matches_transformers(tmp_path, kwargs):
    images, annotations = _panoptic_case(tmp_path)
    call = dict(annotations=annotations, masks_path=tmp_path, return_tensors="pt")
    theirs = Reference(format="coco_panoptic", **kwargs)(images, **call)
    ours = DetrImageProcessor(format="coco_panoptic", **kwargs)(images, **call)
    _assert_same(ours, theirs)
    assert ours["labels"][0]["masks"].dtype == torch.bool and ours["labels"][0]["masks"].shape[0] == 3
    without_masks = DetrImageProcessor(format="coco_panoptic")(images, return_segmentation_masks=False, **call)
    assert "masks" not in without_masks["labels"][0]


def test_other_frameworks_get_their_tensors():
    images = [PIL_Image.fromarray(_rgb(h, w, i)) for i, (h, w) in enumerate(SIZES[:2])]
    reference = DetrImageProcessor()(images, annotations=_detection_annotations(2), return_tensors="np")
    tf = pytest.importorskip("tensorflow")
    out = DetrImageProcessor()(images, annotations=_detection_annotations(2), return_tensors="tf")
    assert isinstance(out["pixel_values"], tf.Tensor) and isinstance(out["labels"][0]["boxes"], tf.Tensor)
    np.testing.assert_array_equal(out["pixel_values"].numpy(), reference["pixel_values"])
    jnp = pytest.importorskip("jax.numpy")
    out = DetrImageProcessor()(images, return_tensors="jax")
    assert isinstance(out["pixel_mask"], type(jnp.zeros(1)))
    np.testing.assert_array_equal(np.asarray(out["pixel_values"]), reference["pixel_values"])


def test_v4_style_pad_of_a_batch():
    images = [np.random.default_rng(0).random((3, 5, 7)).astype(np.float32), np.random.default_rng(1).random((3, 8, 4)).astype(np.float32)]
    out = DetrImageProcessor().pad(images, return_tensors="pt")
    assert out["pixel_values"].shape == (2, 3, 8, 7) and out["pixel_mask"].shape == (2, 8, 7)
    assert out["pixel_mask"][0].sum() == 35 and out["pixel_mask"][1].sum() == 32
    torch.testing.assert_close(out["pixel_values"][1, :, :8, :4], torch.from_numpy(images[1]))
    assert out["pixel_values"][0, :, 5:, :].abs().sum() == 0


# --- post-processing ---------------------------------------------------------------------------


def _outputs(batch=2, queries=12, classes=5, mask_hw=(20, 24), seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, queries, classes + 1, generator=g) * 3
    return SimpleNamespace(
        logits=logits,
        pred_boxes=torch.rand(batch, queries, 4, generator=g),
        pred_masks=torch.randn(batch, queries, *mask_hw, generator=g) * 4,
    )


@pytest.mark.parametrize("target_sizes", [None, [(480, 640), (100, 50)], "tensor"])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.9])
def test_post_process_object_detection_matches(target_sizes, threshold):
    outputs = _outputs()
    if target_sizes == "tensor":
        target_sizes = torch.tensor([[480, 640], [100, 50]])
    ours = DetrImageProcessor().post_process_object_detection(outputs, threshold=threshold, target_sizes=target_sizes)
    theirs = Reference().post_process_object_detection(outputs, threshold=threshold, target_sizes=target_sizes)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("target_sizes", [None, [(40, 30), (15, 60)]])
@pytest.mark.parametrize("return_scores", [False, True])
def test_post_process_semantic_segmentation_matches(target_sizes, return_scores):
    outputs = _outputs()
    ours = DetrImageProcessor().post_process_semantic_segmentation(outputs, target_sizes=target_sizes, return_segmentation_scores=return_scores)
    theirs = Reference().post_process_semantic_segmentation(outputs, target_sizes=target_sizes, return_segmentation_scores=return_scores)
    if return_scores:
        ours = [{"segmentation": o["segmentation"], "segmentation_scores": o["segmentation_scores"]} for o in ours]
        theirs = [{"segmentation": t.segmentation, "segmentation_scores": t.segmentation_scores} for t in theirs]
    _assert_same(ours, theirs)


@pytest.mark.parametrize("target_sizes", [None, [(40, 30), (15, 60)]])
@pytest.mark.parametrize(("threshold", "coco"), [(0.3, False), (0.3, True), (0.999, False)])
def test_post_process_instance_segmentation_matches(target_sizes, threshold, coco):
    outputs = _outputs(seed=3)
    kwargs = dict(threshold=threshold, overlap_mask_area_threshold=0.5, target_sizes=target_sizes, return_coco_annotation=coco)
    ours = DetrImageProcessor().post_process_instance_segmentation(outputs, **kwargs)
    theirs = Reference().post_process_instance_segmentation(outputs, **kwargs)
    assert [o["segments_info"] for o in ours] == [t["segments_info"] for t in theirs]
    if coco:
        assert [[list(map(int, r)) for r in o["segmentation"]] for o in ours] == [[list(map(int, r)) for r in t["segmentation"]] for t in theirs]
    else:
        _assert_same([o["segmentation"] for o in ours], [t["segmentation"] for t in theirs])
    if threshold < 0.5:
        assert any(o["segments_info"] for o in ours)  # the case exercises real segments


@pytest.mark.parametrize("target_sizes", [None, [(40, 30), (15, 60)]])
@pytest.mark.parametrize("fuse", [None, {0, 1, 2}])
def test_post_process_panoptic_segmentation_matches(target_sizes, fuse):
    outputs = _outputs(seed=4, queries=20, classes=3)
    kwargs = dict(threshold=0.2, overlap_mask_area_threshold=0.3, label_ids_to_fuse=fuse, target_sizes=target_sizes)
    ours = DetrImageProcessor().post_process_panoptic_segmentation(outputs, **kwargs)
    theirs = Reference().post_process_panoptic_segmentation(outputs, **kwargs)
    assert [o["segments_info"] for o in ours] == [t["segments_info"] for t in theirs]
    _assert_same([o["segmentation"] for o in ours], [t["segmentation"] for t in theirs])
    assert any(o["segments_info"] for o in ours)
    if fuse:
        assert any(s["was_fused"] for o in ours for s in o["segments_info"])


def test_post_processing_checks_batch_sizes():
    outputs = _outputs()
    for method in ("post_process_object_detection", "post_process_semantic_segmentation", "post_process_instance_segmentation", "post_process_panoptic_segmentation"):
        with pytest.raises(ValueError, match="3 target sizes for a batch of 2"):
            getattr(DetrImageProcessor(), method)(outputs, target_sizes=[(1, 1)] * 3)


# --- files -------------------------------------------------------------------------------------


def test_saved_file_loads_in_transformers_and_back(tmp_path):
    ours = DetrImageProcessor(size={"shortest_edge": 30, "longest_edge": 60}, image_mean=[0.4, 0.5, 0.6], do_pad=False, resample=3)
    ours.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert written["image_processor_type"] == "DetrImageProcessor" and "feature_extractor_type" not in written
    assert written["resample"] == 3 and written["format"] == "coco_detection"
    theirs = Reference.from_pretrained(tmp_path)
    images = [PIL_Image.fromarray(_rgb(h, w, i)) for i, (h, w) in enumerate(SIZES)]
    _assert_same(ours(images), theirs(images))
    again = DetrImageProcessor.from_pretrained(tmp_path)
    assert again.to_dict() == ours.to_dict()
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is DetrImageProcessor


@pytest.mark.parametrize("name", ["preprocessor_v5_default", "preprocessor_v5_custom", "preprocessor_v4_default", "preprocessor_legacy_hub"])
def test_reads_transformers_files(name):
    ours = AutoImageProcessor.from_pretrained(FIXTURES / name)
    assert type(ours) is DetrImageProcessor
    theirs = Reference.from_pretrained(FIXTURES / name)
    for key in ("do_resize", "do_rescale", "do_normalize", "do_pad", "do_convert_annotations", "rescale_factor", "image_mean", "image_std"):
        value = getattr(theirs, key)
        assert getattr(ours, key) == (list(value) if isinstance(value, tuple) else value), key
    assert ours.format == theirs.format and int(ours.resample) == int(theirs.resample)
    assert {k: v for k, v in ours.size.items() if v is not None} == {k: v for k, v in dict(theirs.size).items() if v is not None}
    assert "_valid_processor_keys" not in ours.to_dict()
    images = [PIL_Image.fromarray(_rgb(h, w, i)) for i, (h, w) in enumerate(SIZES[:2])]
    _assert_same(ours(images, return_tensors="np"), theirs(images, return_tensors="np"))


def test_fast_processor_name_resolves(tmp_path):
    data = json.loads((FIXTURES / "preprocessor_v5_default" / "preprocessor_config.json").read_text())
    data["image_processor_type"] = "DetrImageProcessorFast"
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(data))
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is DetrImageProcessor


def test_legacy_size_and_mask_arguments():
    processor = DetrImageProcessor(size=600, max_size=1000, pad_and_return_pixel_mask=False)
    assert processor.size == {"shortest_edge": 600, "longest_edge": 1000} and processor.do_pad is False
    assert DetrImageProcessor(do_normalize=False).do_convert_annotations is False


# --- bad inputs --------------------------------------------------------------------------------


def test_bad_inputs_raise_typed_errors(tmp_path):
    processor = DetrImageProcessor()
    image = _rgb(10, 12)
    with pytest.raises(ValueError, match="not a valid coco_detection annotation"):
        processor(image, annotations={"image_id": 1})
    with pytest.raises(ValueError, match="not a valid coco_panoptic annotation"):
        processor(image, annotations={"image_id": 1, "annotations": []}, format="coco_panoptic")
    with pytest.raises(ValueError, match="2 images but 1 annotations"):
        processor([image, image], annotations=[{"image_id": 1, "annotations": []}])
    with pytest.raises(ValueError, match="format must be one of"):
        DetrImageProcessor(format="pascal_voc")
    with pytest.raises(ValueError, match="masks_path"):
        processor(image, annotations={"image_id": 1, "file_name": "x.png", "segments_info": []}, format="coco_panoptic")
    with pytest.raises(ValueError, match="Cannot pad an image of size"):
        processor(image, pad_size={"height": 10, "width": 10})
    with pytest.raises(ValueError, match="size must have"):
        processor(image, size={"longest_edge": 10})
    with pytest.raises(ImageInputError, match="Cannot tell the channel axis"):
        processor(np.zeros((5, 6, 7), np.uint8))
    with pytest.raises(ImageInputError, match="ndim=5"):
        processor(np.zeros((1, 1, 3, 5, 6), np.uint8))
    with pytest.raises(ImageInputError, match=r"outside \[0, 1\]"):
        processor(np.full((5, 6, 3), -0.5, np.float32))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ImageInputError, match="bad.jpg"):
        processor(str(tmp_path / "bad.jpg"))
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        processor(image, do_magic=True)
    with pytest.raises(ValueError, match="return_tensors must be one of"):
        processor(image, return_tensors="mx")


def _polygon_annotations():
    return [{"image_id": 0, "annotations": [{"bbox": [2.0, 2.0, 10.0, 8.0], "category_id": 1, "area": 80.0, "segmentation": [[2, 2, 12, 2, 12, 10, 2, 10]]}]}]


def test_detection_masks_need_pycocotools():
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pycocotools"):
            DetrImageProcessor()(_rgb(20, 30), annotations=_polygon_annotations(), return_segmentation_masks=True)
    else:
        image = PIL_Image.fromarray(_rgb(20, 30))
        call = dict(annotations=_polygon_annotations(), return_segmentation_masks=True, return_tensors="pt")
        _assert_same(DetrImageProcessor()(image, **call), Reference()(image, **call))
