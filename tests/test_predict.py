"""Your own digit images are made to look like MNIST; broken files are named, not fatal."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from digits import predict, repeatable


def stroke_image(size=(90, 60), dark_on_light=True) -> Image.Image:
    """A hand-drawn-like '1': a thick bar, off-centre, on plain paper."""
    ink = np.zeros(size, dtype=np.uint8)
    ink[20:80, 35:45] = 255
    return Image.fromarray(255 - ink if dark_on_light else ink)


def test_an_image_becomes_a_centred_28x28_digit(tmp_path):
    path = tmp_path / "one.png"
    stroke_image().save(path)
    digit = predict.to_mnist(predict.load_grey(path))
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert digit.min() >= 0.0 and digit.max() == pytest.approx(1.0, abs=0.02)
    rows, cols = np.nonzero(digit > 0.05)
    assert rows.max() - rows.min() + 1 <= 21  # the longer side is scaled to 20 pixels
    assert cols.max() - cols.min() + 1 < rows.max() - rows.min() + 1  # aspect kept
    weights = digit / digit.sum()
    centre = (weights.sum(axis=1) @ np.arange(28), weights.sum(axis=0) @ np.arange(28))
    assert centre == pytest.approx((13.5, 13.5), abs=0.6)
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # background is black, as in MNIST


def test_light_ink_on_dark_gives_the_same_digit_as_dark_on_light(tmp_path):
    stroke_image(dark_on_light=True).save(tmp_path / "dark.png")
    stroke_image(dark_on_light=False).save(tmp_path / "light.jpg", quality=95)
    dark = predict.to_mnist(predict.load_grey(tmp_path / "dark.png"))
    light = predict.to_mnist(predict.load_grey(tmp_path / "light.jpg"))
    np.testing.assert_allclose(dark, light, atol=0.1)


def test_ink_on_a_transparent_background_is_read(tmp_path):
    rgba = np.zeros((90, 60, 4), dtype=np.uint8)  # black, fully transparent
    rgba[20:80, 35:45, 3] = 255  # opaque black ink
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    stroke_image().save(tmp_path / "plain.png")
    alpha = predict.to_mnist(predict.load_grey(tmp_path / "alpha.png"))
    plain = predict.to_mnist(predict.load_grey(tmp_path / "plain.png"))
    np.testing.assert_allclose(alpha, plain, atol=0.05)


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG that claims an enormous size; only its header is valid."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"%PDF-1.4 not an image", "not a PNG, JPEG or other image Pillow can read"),
        (huge_png_header(100_000, 100_000), "the image is too large: over 50,000,000 pixels"),
        (huge_png_header(10_000, 8_000), "the image is too large: 10000 x 8000 pixels"),
    ],
)
def test_broken_files_are_refused_with_a_reason(tmp_path, content, message):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(predict.ImageError, match=message):
        predict.load_grey(path)


def test_a_truncated_png_is_refused(tmp_path):
    whole = tmp_path / "whole.png"
    stroke_image(size=(300, 300)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:60])
    with pytest.raises(predict.ImageError, match="broken|not a PNG"):
        predict.load_grey(cut)


def test_a_blank_page_has_no_ink(tmp_path):
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    with pytest.raises(predict.ImageError, match="no ink found"):
        predict.to_mnist(predict.load_grey(tmp_path / "blank.png"))


def test_every_file_is_answered_and_failures_set_the_exit_code(tmp_path, capsys, monkeypatch):
    """Bad files are named on stderr; good ones are still classified (by a stand-in model)."""
    stroke_image().save(tmp_path / "one.png")
    (tmp_path / "broken.png").write_bytes(b"junk")

    class StandIn:
        def predict(self, images, verbose=0):
            assert images.shape == (1, 28, 28)
            return np.eye(10, dtype=np.float32)[[1]] * 0.9 + 0.01

    keras = repeatable.import_keras()

    monkeypatch.setattr(keras.models, "load_model", lambda path: StandIn())
    model = tmp_path / "model.keras"
    model.write_bytes(b"stand-in")
    missing = tmp_path / "missing.png"
    code = predict.main(
        [
            str(tmp_path / "one.png"),
            str(tmp_path / "broken.png"),
            str(missing),
            "--model",
            str(model),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith(f"{tmp_path / 'one.png'}: 1  (1: 91.0%")
    assert f"error: {tmp_path / 'broken.png'}: not a PNG" in err
    assert f"error: {missing}: No such file or directory" in err


def test_json_output_lists_answers_and_errors(tmp_path, capsys, monkeypatch):
    import json

    stroke_image().save(tmp_path / "one.png")
    (tmp_path / "empty.png").write_bytes(b"")
    keras = repeatable.import_keras()

    monkeypatch.setattr(
        keras.models,
        "load_model",
        lambda path: type("M", (), {"predict": lambda self, x, verbose=0: np.full((1, 10), 0.1)})(),
    )
    (tmp_path / "m.keras").write_bytes(b"x")
    predict.main(
        [
            str(tmp_path / "one.png"),
            str(tmp_path / "empty.png"),
            "--json",
            "--model",
            str(tmp_path / "m.keras"),
        ]
    )
    records = json.loads(capsys.readouterr().out)
    assert records[0]["file"].endswith("one.png") and len(records[0]["top3"]) == 3
    assert records[1] == {"file": str(tmp_path / "empty.png"), "error": "the file is empty"}


def test_outside_the_project_without_model_the_answer_is_one_line(tmp_path, capsys, monkeypatch):
    stroke_image().save(tmp_path / "one.png")
    monkeypatch.chdir(tmp_path)
    assert predict.main(["one.png"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        "error: no --model given, and no project here to find the trained model in "
        "(you are not inside of a DVC repository"
    )
    assert err.count("\n") == 1
