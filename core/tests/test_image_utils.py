"""polyformers.image_utils: loading with typed errors, layouts, resize/rescale/normalize/pad, boxes.

Numbers are compared with Transformers' ``image_transforms`` (the test-only oracle) where it has
the same function.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from polyformers import image_utils
from polyformers.errors import ImageInputError, PolyformersError
from polyformers.image_utils import ChannelDimension

PIL_Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def tf_transforms():
    return pytest.importorskip("transformers.image_transforms")


def _rand_uint8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- loading -----------------------------------------------------------------------------------


def test_image_input_error_is_a_value_error():
    assert issubclass(ImageInputError, PolyformersError) and issubclass(ImageInputError, ValueError)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA", "I;16", "CMYK"])
def test_load_image_gives_rgb_for_every_mode(tmp_path, mode):
    rgb = PIL_Image.fromarray(_rand_uint8((9, 7, 3)))
    image = rgb.convert(mode) if mode != "I;16" else PIL_Image.fromarray((_rand_uint8((9, 7)).astype(np.uint16) * 257))
    path = tmp_path / ("x.tiff" if mode in ("I;16", "CMYK") else "x.png")
    image.save(path)
    loaded = image_utils.load_image(path)
    assert loaded.mode == "RGB" and loaded.size == (7, 9)


def test_load_image_composites_alpha_onto_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red, the rest fully transparent
    PIL_Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = np.array(image_utils.load_image(tmp_path / "a.png"))
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 1].tolist() == [255, 255, 255]


def test_convert_to_rgb_matches_transformers(tf_transforms):
    for image in (
        PIL_Image.fromarray(_rand_uint8((5, 6, 4)), mode="RGBA"),
        PIL_Image.fromarray(_rand_uint8((5, 6))),
        PIL_Image.fromarray(_rand_uint8((5, 6, 3))).convert("P"),
    ):
        np.testing.assert_array_equal(np.array(image_utils.convert_to_rgb(image)), tf_transforms.convert_to_rgb(image, return_numpy=True))
    for array, fmt in ((_rand_uint8((5, 6, 4)), "channels_last"), (_rand_uint8((4, 5, 6)), "channels_first"), (_rand_uint8((1, 5, 6)), "channels_first")):
        np.testing.assert_array_equal(
            image_utils.convert_to_rgb(array, fmt), tf_transforms.convert_to_rgb(array, return_numpy=True, input_data_format=fmt)
        )


def test_corrupt_and_missing_files_raise_image_input_error(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageInputError, match="junk.png"):
        image_utils.load_image(tmp_path / "junk.png")
    PIL_Image.fromarray(_rand_uint8((64, 64, 3))).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match="truncated"):
        image_utils.load_image(tmp_path / "truncated.png")
    with pytest.raises(ImageInputError, match="does not exist"):
        image_utils.load_image(tmp_path / "missing.png")
    with pytest.raises(ImageInputError, match="does not download"):
        image_utils.load_image("https://example.com/cat.png")
    with pytest.raises(ImageInputError, match="file path or a PIL image"):
        image_utils.load_image(42)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (the data is never decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageInputError, match="decompression bomb"):
        image_utils.load_image(tmp_path / "bomb.png")
    # Under Pillow's own hard limit but over ours: refused before decoding, with the numbers.
    (tmp_path / "big.png").write_bytes(_png_header_only(10_000, 10_000))
    with pytest.raises(ImageInputError, match="10000x10000"):
        image_utils.load_image(tmp_path / "big.png")
    PIL_Image.fromarray(_rand_uint8((20, 30, 3))).save(tmp_path / "small.png")
    with pytest.raises(ImageInputError, match="600 pixels"):
        image_utils.load_image(tmp_path / "small.png", max_pixels=100)
    assert image_utils.load_image(tmp_path / "small.png", max_pixels=None).size == (30, 20)


def test_make_list_of_images_shapes_and_errors(tmp_path):
    assert len(image_utils.make_list_of_images(_rand_uint8((2, 4, 5, 3)))) == 2
    assert len(image_utils.make_list_of_images(_rand_uint8((4, 5, 3)))) == 1
    PIL_Image.fromarray(_rand_uint8((4, 5, 3))).save(tmp_path / "a.png")
    loaded = image_utils.make_list_of_images([str(tmp_path / "a.png"), _rand_uint8((4, 5))])
    assert loaded[0].mode == "RGB"
    with pytest.raises(ImageInputError, match="empty"):
        image_utils.make_list_of_images([])
    with pytest.raises(ImageInputError, match="Image 1"):
        image_utils.make_list_of_images([_rand_uint8((4, 5)), np.zeros(3)])
    with pytest.raises(ImageInputError, match="ndim=1"):
        image_utils.make_list_of_images(np.zeros(3))


def test_pillow_is_imported_only_when_needed():
    code = (
        "import sys, numpy as np\n"
        "from polyformers import image_utils\n"
        "image_utils.normalize(np.ones((3, 4, 4), np.float32), 0.5, 0.5)\n"
        "image_utils.center_to_corners_format(np.ones((2, 4)))\n"
        "assert 'PIL' not in sys.modules and 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith(('PIL', 'torch')))\n"
        "image_utils.resize(np.ones((3, 4, 4), np.uint8), (2, 2))\n"
        "assert 'PIL' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- layout ------------------------------------------------------------------------------------


def test_infer_channel_dimension_format():
    assert image_utils.infer_channel_dimension_format(np.zeros((3, 5, 6))) == ChannelDimension.FIRST
    assert image_utils.infer_channel_dimension_format(np.zeros((5, 6, 3))) == ChannelDimension.LAST
    assert image_utils.infer_channel_dimension_format(np.zeros((3, 5, 3))) == ChannelDimension.FIRST  # a tie: first
    assert image_utils.infer_channel_dimension_format(np.zeros((2, 5, 6, 1))) == ChannelDimension.LAST
    assert image_utils.infer_channel_dimension_format(np.zeros((5, 6, 4)), num_channels=(1, 3, 4)) == ChannelDimension.LAST
    with pytest.raises(ImageInputError, match=r"\(5, 6, 7\).*input_data_format"):
        image_utils.infer_channel_dimension_format(np.zeros((5, 6, 7)))
    with pytest.raises(ImageInputError, match="dimensions: 2"):
        image_utils.infer_channel_dimension_format(np.zeros((5, 6)))


def test_layout_helpers():
    image = _rand_uint8((5, 6, 3))
    first = image_utils.to_channel_dimension_format(image, "channels_first")
    assert first.shape == (3, 5, 6)
    np.testing.assert_array_equal(image_utils.to_channel_dimension_format(first, ChannelDimension.LAST), image)
    assert image_utils.get_image_size(first) == (5, 6) == image_utils.get_image_size(image)
    assert image_utils.get_max_height_width([np.zeros((3, 5, 9)), np.zeros((3, 7, 2))]) == (7, 9)


# --- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("hw", [(480, 640), (640, 480), (800, 1000), (100, 2000), (2000, 100), (333, 333), (1, 5)])
@pytest.mark.parametrize(("size", "max_size"), [(800, 1333), (800, None), (20, 50)])
def test_get_size_with_aspect_ratio_matches_transformers(tf_transforms, hw, size, max_size):
    assert image_utils.get_size_with_aspect_ratio(hw, size, max_size) == tf_transforms.get_size_with_aspect_ratio(hw, size, max_size)


@pytest.mark.parametrize("hw", [(480, 640), (640, 480), (100, 2000)])
@pytest.mark.parametrize(("size", "square", "max_size"), [(224, True, None), (224, False, None), (224, False, 300), ((10, 20), True, None), ([50], False, None)])
def test_get_resize_output_image_size_matches_transformers(tf_transforms, hw, size, square, max_size):
    image = np.zeros((3, *hw))
    ours = image_utils.get_resize_output_image_size(image, size, default_to_square=square, max_size=max_size)
    theirs = tf_transforms.get_resize_output_image_size(image, size, default_to_square=square, max_size=max_size)
    assert tuple(ours) == tuple(theirs)


def test_get_image_size_for_max_height_width():
    assert image_utils.get_image_size_for_max_height_width((100, 200), 50, 50) == (25, 50)
    assert image_utils.get_image_size_for_max_height_width((10, 20), 100, 100) == (50, 100)


# --- transforms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "fmt"),
    [((3, 17, 23), "channels_first"), ((17, 23, 3), "channels_last"), ((1, 9, 11), "channels_first"), ((9, 11, 1), "channels_last")],
)
@pytest.mark.parametrize("dtype", ["uint8", "float_unit", "float_255"])
@pytest.mark.parametrize("resample", [image_utils.PILImageResampling.BILINEAR, image_utils.PILImageResampling.NEAREST, image_utils.PILImageResampling.BICUBIC])
def test_resize_matches_transformers(tf_transforms, shape, fmt, dtype, resample):
    image = _rand_uint8(shape)
    if dtype == "float_unit":
        image = image.astype(np.float32) / 255
    elif dtype == "float_255":
        image = image.astype(np.float32)
    ours = image_utils.resize(image, (13, 31), resample=resample, input_data_format=fmt)
    theirs = tf_transforms.resize(image, (13, 31), resample=resample, input_data_format=fmt)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    out_last = image_utils.resize(image, (13, 31), data_format="channels_last", input_data_format=fmt)
    assert out_last.shape == (13, 31, shape[0] if fmt == "channels_first" else shape[-1])


def test_resize_refuses_values_pillow_cannot_hold():
    with pytest.raises(ImageInputError, match=r"outside \[0, 1\]"):
        image_utils.resize(np.full((3, 4, 4), -0.5, np.float32), (2, 2))
    with pytest.raises(ImageInputError, match=r"outside \[0, 255\]"):
        image_utils.resize(np.full((3, 4, 4), 300, np.int32), (2, 2))


def test_rescale_and_normalize_match_transformers(tf_transforms):
    image = _rand_uint8((3, 6, 7))
    np.testing.assert_array_equal(image_utils.rescale(image, 1 / 255), tf_transforms.rescale(image, 1 / 255))
    assert image_utils.rescale(image, 1 / 255).dtype == np.float32
    scaled = image_utils.rescale(image, 1 / 255)
    for fmt, img in (("channels_first", scaled), ("channels_last", np.moveaxis(scaled, 0, -1))):
        ours = image_utils.normalize(img, image_utils.IMAGENET_DEFAULT_MEAN, image_utils.IMAGENET_DEFAULT_STD, input_data_format=fmt)
        theirs = tf_transforms.normalize(img, image_utils.IMAGENET_DEFAULT_MEAN, image_utils.IMAGENET_DEFAULT_STD, input_data_format=fmt)
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(image_utils.normalize(image, 0.5, 2.0), tf_transforms.normalize(image, 0.5, 2.0))
    assert image_utils.normalize(image, 0.5, 2.0).dtype == np.float32


def test_normalize_names_the_channel_mismatch():
    with pytest.raises(ImageInputError, match="image_mean has 3 values but the image has 4 channels"):
        image_utils.normalize(np.zeros((4, 5, 6), np.float32), [0.5] * 3, [0.5] * 3, input_data_format="channels_first")


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "symmetric"])
@pytest.mark.parametrize("padding", [2, (1, 3), ((0, 2), (3, 1))])
def test_pad_matches_transformers(tf_transforms, mode, padding):
    image = _rand_uint8((3, 5, 6))
    ours = image_utils.pad(image, padding, mode=mode, constant_values=7)
    theirs = tf_transforms.pad(image, padding, mode=mode, constant_values=7)
    np.testing.assert_array_equal(ours, theirs)
    last = image_utils.pad(np.moveaxis(image, 0, -1), padding, mode=mode, constant_values=7, data_format="channels_first")
    np.testing.assert_array_equal(last, theirs)


def test_pad_rejects_bad_padding():
    with pytest.raises(ValueError, match="Unsupported padding"):
        image_utils.pad(np.zeros((3, 4, 4)), [1, 2, 3])


# --- boxes -------------------------------------------------------------------------------------


def test_box_conversions_numpy_and_torch(tf_transforms):
    boxes = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    corners = image_utils.center_to_corners_format(boxes)
    np.testing.assert_array_equal(corners, tf_transforms.center_to_corners_format(boxes))
    np.testing.assert_array_equal(image_utils.corners_to_center_format(corners), tf_transforms.corners_to_center_format(corners))
    np.testing.assert_allclose(image_utils.corners_to_center_format(corners), boxes, atol=1e-6)
    torch = pytest.importorskip("torch")
    tb = torch.from_numpy(boxes).reshape(1, 5, 4)
    torch.testing.assert_close(image_utils.center_to_corners_format(tb), tf_transforms.center_to_corners_format(tb), rtol=0, atol=0)
    torch.testing.assert_close(image_utils.corners_to_center_format(tb), tf_transforms.corners_to_center_format(tb), rtol=0, atol=0)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        image_utils.center_to_corners_format([[0.5, 0.5, 1, 1]])
