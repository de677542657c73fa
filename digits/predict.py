"""Predict your own digit: classify photos or scans of handwritten digits with the trained model.

    python -m digits.predict seven.png two.jpg [--json] [--model models/model.keras]

Reads:  the images named, and the model the pipeline trained (the train stage's .keras
        output, as DVC resolves dvc.yaml), or the one named with --model.
Writes: nothing; prints, per file, the predicted digit and the three most probable digits.

Each image is made to look like an MNIST digit first, the way MNIST itself was made: grey,
light ink on a dark background, cropped to the ink, the longer side scaled to 20 pixels, and
placed in a 28x28 frame with its centre of mass in the middle.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from digits import repeatable

MAX_FILE_BYTES = 50 * 2**20
MAX_PIXELS = 50_000_000
FRAME, DIGIT_BOX = 28, 20
# Pixels brighter than this fraction of the brightest ink pixel count as ink when cropping.
INK_THRESHOLD = 0.1


class ImageError(Exception):
    """An input image that cannot be classified; the message says why."""


def load_grey(path: Path) -> np.ndarray:
    """Read an image file as float greys in [0, 255], flattening any alpha channel."""
    size = path.stat().st_size
    if size == 0:
        raise ImageError("the file is empty")
    if size > MAX_FILE_BYTES:
        raise ImageError(f"the file is {size / 2**20:.0f} MiB; at most {MAX_FILE_BYTES // 2**20}")
    with warnings.catch_warnings():
        # Pillow warns about very large images; the size check below refuses them itself.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(f"the image is too large: {width} x {height} pixels")
                image.load()
                return flatten_alpha(np.asarray(image.convert("RGBA")))
        except Image.DecompressionBombError:
            # Pillow refuses far larger images itself, before we see their size.
            raise ImageError(f"the image is too large: over {MAX_PIXELS:,} pixels") from None
        except UnidentifiedImageError:
            raise ImageError("not a PNG, JPEG or other image Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(f"the image data is broken ({error})") from None


def round_half_up(value: float) -> int:
    """Rounding as the page's JavaScript does it (Math.floor(x + 0.5)), not Python's to-even."""
    return int(np.floor(value + 0.5))


def flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """RGBA pixels (height x width x 4, 0-255) -> greys in [0, 255].

    Grey is 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as Pillow's "L"), unrounded. Where the
    paper is transparent, the ink is laid on paper of the opposite shade, so it stays visible.
    """
    rgba = np.asarray(rgba, dtype=np.float64)
    grey = (299 * rgba[..., 0] + 587 * rgba[..., 1] + 114 * rgba[..., 2]) / 1000
    alpha = rgba[..., 3]
    opaque = alpha > 127
    if not opaque.any() or opaque.all():
        return grey
    paper = 255.0 if np.median(grey[opaque]) < 128 else 0.0
    return grey * alpha / 255 + paper * (1 - alpha / 255)


def box_weights(source: int, target: int) -> np.ndarray:
    """How much of each source pixel goes into each target pixel when `source` pixels are
    averaged down (or spread up) to `target`: target x source, each row summing to 1."""
    edges = np.arange(target + 1) * (source / target)
    pixels = np.arange(source)
    low = np.maximum(edges[:-1, None], pixels[None, :])
    high = np.minimum(edges[1:, None], pixels[None, :] + 1)
    return np.clip(high - low, 0, None) * (target / source)


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """Any grey image of one digit -> 28x28 float32 in [0, 1], light ink on black, as in MNIST.

    The steps, which the course page's JavaScript repeats number for number: invert if the
    border is light; subtract the border's median; crop to the ink (pixels above a tenth of the
    brightest); stretch the ink to 255; scale the longer side to 20 pixels by area averaging;
    place it in 28x28 with its centre of mass in the middle; divide by 255.
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: MNIST is the other way round
        grey = 255 - grey
        border = 255 - border
    ink = np.clip(grey - np.median(border), 0, None)
    if ink.max() <= 0:
        raise ImageError("no ink found: the image is a single shade")
    rows, cols = np.nonzero(ink > INK_THRESHOLD * ink.max())
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    ink = ink * (255 / ink.max())

    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    new_height = max(1, round_half_up(height * scale))
    new_width = max(1, round_half_up(width * scale))
    digit = box_weights(height, new_height) @ ink @ box_weights(width, new_width).T

    # Centre of mass to the middle of the frame, as MNIST did, keeping the digit inside it.
    total = digit.sum()
    centre_row = (digit.sum(axis=1) * np.arange(digit.shape[0])).sum() / total
    centre_col = (digit.sum(axis=0) * np.arange(digit.shape[1])).sum() / total
    top = min(max(round_half_up(FRAME / 2 - 0.5 - centre_row), 0), FRAME - digit.shape[0])
    left = min(max(round_half_up(FRAME / 2 - 0.5 - centre_col), 0), FRAME - digit.shape[1])
    frame = np.zeros((FRAME, FRAME))
    frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return (frame / 255).astype(np.float32)


@dataclass
class Answer:
    file: str
    digit: int | None = None
    top3: list[tuple[int, float]] | None = None
    probabilities: list[float] | None = None
    error: str | None = None

    def line(self) -> str:
        ranked = ", ".join(f"{d}: {p:.1%}" for d, p in self.top3)
        return f"{self.file}: {self.digit}  ({ranked})"

    def record(self) -> dict:
        if self.error:
            return {"file": self.file, "error": self.error}
        top3 = [{"digit": d, "probability": round(p, 6)} for d, p in self.top3]
        every = [round(p, 6) for p in self.probabilities]
        return {"file": self.file, "digit": self.digit, "top3": top3, "probabilities": every}


def predict(files: list[Path], model_path: Path) -> list[Answer]:
    answers, images = [], []
    for file in files:
        try:
            images.append(to_mnist(load_grey(Path(file))))
            answers.append(Answer(str(file)))
        except ImageError as error:
            answers.append(Answer(str(file), error=str(error)))
        except OSError as error:
            answers.append(Answer(str(file), error=error.strerror or str(error)))
    if images:
        if not Path(model_path).is_file():
            raise SystemExit(f"error: no trained model at {model_path}; run `make repro` first")
        keras = repeatable.import_keras()  # Imported only when there is something to classify.

        probabilities = keras.models.load_model(model_path).predict(np.stack(images), verbose=0)
        good = (answer for answer in answers if not answer.error)
        for answer, row in zip(good, probabilities, strict=True):
            order = np.argsort(row)[::-1][:3]
            answer.digit = int(order[0])
            answer.top3 = [(int(d), float(row[d])) for d in order]
            answer.probabilities = [float(p) for p in row]
    return answers


def trained_model(root: Path = Path(".")) -> Path:
    """The train stage's .keras output, as DVC resolves dvc.yaml in `root`.

    digit-predict is a command, not a stage, so it may ask DVC; no stage does.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            (stage,) = repo.stage.collect("train")
            found = sorted(out.def_path for out in stage.outs if out.def_path.endswith(".keras"))
    except (DvcException, ValueError) as error:
        raise LookupError((str(error).splitlines() or [type(error).__name__])[0]) from None
    if not found:
        raise LookupError("the train stage has no .keras output")
    return Path(root) / found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="digit-predict", description="Classify images of handwritten digits."
    )
    parser.add_argument("images", nargs="+", type=Path, help="PNG or JPEG files, any size")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--model", type=Path, help="a .keras model (default: the train stage's, from dvc.yaml)"
    )
    args = parser.parse_args(argv)
    try:
        model_path = args.model or trained_model()
    except LookupError as error:
        print(
            f"error: no --model given, and no project here to find the trained model in ({error})",
            file=sys.stderr,
        )
        return 1

    # The same image gives the same probabilities on any machine, as in the evaluate stage:
    # TensorFlow reads the thread count once, when predict() imports it, so it is set first.
    repeatable.threads_per_op(repeatable.EVALUATION_THREADS)
    answers = predict(args.images, model_path)
    for answer in answers:
        if answer.error:
            print(f"error: {answer.file}: {answer.error}", file=sys.stderr)
    if args.json:
        print(json.dumps([answer.record() for answer in answers], indent=2))
    else:
        for answer in answers:
            if not answer.error:
                print(answer.line())
    return 1 if any(answer.error for answer in answers) else 0


if __name__ == "__main__":
    sys.exit(main())
