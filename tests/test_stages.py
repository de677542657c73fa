"""Each stage's work on a few random digits, and the chain of them in tmp_path."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from digits import repeatable, scores, summary
from digits.model import build_model, make_optimizer
from pipeline import artifacts, cli
from stages import evaluate, prepare, render, train, values
from tests.helpers import ROOT, copy_project, random_digits, render_reports, run

keras = repeatable.import_keras()

TRAIN_SETTINGS = dict(
    architecture=dict(hidden_units=[16]),
    epochs=2,
    batch_size=8,
    optimizer="adam",
    learning_rate=0.001,
    seed=7,
)


def test_normalize_scales_pixels_to_unit_floats():
    pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    scaled = prepare.normalize(pixels)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, np.float32([[0.0, 0.2, 1.0]]))


def test_normalize_gives_the_lessons_bytes_for_every_pixel_value():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    images[0].flat[:256] = np.arange(256)
    lesson = (images / 255.0).astype(np.float32)
    scaled = prepare.normalize(images)
    assert scaled.shape == images.shape
    assert scaled.tobytes() == lesson.tobytes()


def test_normalize_refuses_pixels_that_are_not_bytes():
    with pytest.raises(ValueError, match="images have dtype int16; normalize expects uint8"):
        prepare.normalize(np.array([[-1, 300]], dtype=np.int16))


def test_prepare_writes_float_images_and_keeps_the_first_images(
    write_tiny_raw, tmp_path, tiny_mnist
):
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    prepare.prepare(write_tiny_raw, train_dir, test_dir, train_size=50, test_size=30)
    x_train, y_train = artifacts.read_split(train_dir, "train")
    x_test, y_test = artifacts.read_split(test_dir, "test")
    assert x_train.shape == (50, 28, 28) and x_test.shape == (30, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    np.testing.assert_array_equal(y_train, tiny_mnist["y_train"][:50])
    np.testing.assert_allclose(x_test * 255, tiny_mnist["x_test"], atol=1e-4)
    assert sorted(p.name for p in train_dir.iterdir()) == ["x_train.npy", "y_train.npy"]
    assert sorted(p.name for p in test_dir.iterdir()) == ["x_test.npy", "y_test.npy"]


def raw_arrays(**changed: np.ndarray) -> dict[str, np.ndarray]:
    """Three digits as download writes them, with `changed` arrays in their place."""
    images, labels = np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8)
    return {"x_train": images, "y_train": labels, "x_test": images, "y_test": labels} | changed


@pytest.mark.parametrize(
    ("arrays", "problem"),
    [
        (None, r"\(.*pickled.*\)"),
        ({"x_train": raw_arrays()["x_train"]}, r"\('y_train is not a file in the archive'\)"),
        (raw_arrays(x_test=np.zeros((3, 28, 28), np.int16)),
         r"\(images have dtype int16; normalize expects uint8 pixels\)"),
    ],
)  # fmt: skip
def test_a_raw_file_download_did_not_write_is_one_line_and_no_split(arrays, problem, tmp_path):
    raw = tmp_path / "mnist.npz"
    if arrays is None:
        raw.write_text("not an archive")
    else:
        np.savez(raw, **arrays)
    expected = rf"^{re.escape(str(raw))} is not the MNIST file the download stage writes {problem}$"
    with pytest.raises(cli.StageError, match=expected):
        prepare.prepare(raw, tmp_path / "train", tmp_path / "test", train_size=3, test_size=3)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mnist.npz"]


def test_the_default_model_is_the_lessons():
    model = build_model(hidden_units=[128])
    layers = model.layers
    assert [type(layer).__name__ for layer in layers] == ["Flatten", "Dense", "Dense"]
    assert layers[1].units == 128 and layers[1].activation.__name__ == "relu"
    assert layers[2].units == 10 and layers[2].activation.__name__ == "softmax"
    assert model.input_shape == (None, 28, 28)
    assert model.count_params() == 101_770


def test_no_hidden_units_is_logistic_regression():
    model = build_model(hidden_units=[])
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense"]
    assert model.count_params() == 784 * 10 + 10


def test_leaky_relu_uses_its_slope_and_dropout_follows_each_hidden_layer():
    model = build_model(hidden_units=[32, 16], activation="leaky_relu", dropout=0.2)
    names = [type(layer).__name__ for layer in model.layers]
    assert names == [
        "Flatten",
        "Dense",
        "LeakyReLU",
        "Dropout",
        "Dense",
        "LeakyReLU",
        "Dropout",
        "Dense",
    ]
    assert model.layers[2].negative_slope == pytest.approx(0.1)


def test_the_cnn_has_two_convolution_blocks_before_the_dense_layers():
    model = build_model(kind="cnn", hidden_units=[64])
    names = [type(layer).__name__ for layer in model.layers]
    assert names == [
        "Reshape", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten",
        "Dense", "Dense",
    ]  # fmt: skip
    assert [model.layers[i].filters for i in (1, 3)] == [32, 64]
    assert model.layers[1].kernel_size == (5, 5)
    assert model.output_shape == (None, 10)


def test_augmentation_changes_training_images_only(rng):
    model = build_model(hidden_units=[], rotation=10, zoom=0.1, shift=0.1, seed=3)
    augment = keras.Sequential(model.layers[:4])  # Reshape and the three random layers
    assert [type(layer).__name__ for layer in augment.layers] == [
        "Reshape", "RandomRotation", "RandomZoom", "RandomTranslation"
    ]  # fmt: skip
    images = rng.random((4, 28, 28)).astype("float32")
    as_trained = np.asarray(augment(images, training=True))[..., 0]
    as_predicted = np.asarray(augment(images, training=False))[..., 0]
    np.testing.assert_array_equal(as_predicted, images)
    assert np.abs(as_trained - images).mean() > 0.01
    assert as_trained.min() >= 0.0  # the corners rotated in are black, like the background


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(hidden_units=[8], kind="rnn"), "kind 'rnn' is not one of dense, cnn"),
        (dict(hidden_units=[8], rotation=200), "augmentation rotation=200, .* is out of range"),
        (dict(hidden_units=[8], activation="swish"), "activation 'swish' is not one of relu"),
        (dict(hidden_units=[8], dropout=1.5), "dropout 1.5 is not a fraction"),
        (dict(hidden_units=[0]), r"hidden_units \[0\] must all be at least 1"),
    ],
)
def test_bad_model_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        build_model(**settings)


def test_optimizers_by_name():
    assert isinstance(make_optimizer("rmsprop", 0.01), keras.optimizers.RMSprop)
    sgd = make_optimizer("sgd", 0.01)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.9)
    with pytest.raises(ValueError, match="optimizer 'adamm' is not one of adam, rmsprop, sgd"):
        make_optimizer("adamm", 0.01)


@pytest.fixture
def prepared(write_tiny_raw, tmp_path):
    """The prepared folder, with the train and test sets in subfolders as in the pipeline."""
    out = tmp_path / "prepared"
    prepare.prepare(write_tiny_raw, out / "train", out / "test", train_size=60, test_size=30)
    return out


def test_training_writes_a_model_and_one_history_row_per_epoch(prepared, tmp_path):
    model_path, history_path = tmp_path / "model.keras", tmp_path / "history.csv"
    train.train(prepared / "train", model_path, history_path, **TRAIN_SETTINGS)
    history = pd.read_csv(history_path)
    assert list(history["epoch"]) == [0, 1]
    assert {"loss", "accuracy"} <= set(history.columns)
    assert history["loss"].notna().all()
    loaded = keras.models.load_model(model_path)
    assert loaded.output_shape == (None, 10)


def test_a_validation_split_adds_validation_curves(prepared, tmp_path):
    history_path = tmp_path / "history.csv"
    settings = dict(TRAIN_SETTINGS, validation_split=0.2, early_stopping_patience=1, epochs=3)
    train.train(prepared / "train", tmp_path / "model.keras", history_path, **settings)
    history = pd.read_csv(history_path)
    assert history["val_loss"].notna().all() and history["val_accuracy"].notna().all()


def test_a_cnn_with_augmentation_trains(prepared, tmp_path):
    settings = dict(
        TRAIN_SETTINGS,
        architecture=dict(kind="cnn", hidden_units=[8], activation="leaky_relu"),
        augmentation=dict(rotation=10, zoom=0.1, shift=0.1),
        optimizer="rmsprop",
        epochs=1,
    )
    train.train(prepared / "train", tmp_path / "cnn.keras", tmp_path / "history.csv", **settings)
    loaded = keras.models.load_model(tmp_path / "cnn.keras")
    assert "RandomRotation" in [type(layer).__name__ for layer in loaded.layers]
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1


def test_training_twice_gives_the_same_bytes(prepared, tmp_path):
    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    settings = dict(TRAIN_SETTINGS, augmentation=dict(rotation=10, zoom=0.1, shift=0.1))
    settings["architecture"] = dict(hidden_units=[16], dropout=0.3)
    train.train(prepared / "train", first, tmp_path / "a.csv", **settings)
    train.train(prepared / "train", second, tmp_path / "b.csv", **settings)
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert b"date_saved" not in archive.read("metadata.json")


AVX2_SETTINGS = dict(
    architecture=dict(hidden_units=[64, 32], activation="leaky_relu"),
    epochs=2,
    batch_size=16,
    optimizer="rmsprop",
    learning_rate=0.001,
    seed=3,
)
TRAIN_IN_A_PROCESS = f"""
import sys
from pathlib import Path
from stages import train
train.train(*map(Path, sys.argv[1:]), **{AVX2_SETTINGS!r})
"""


def trained_here_and_in_a_process(tmp_path, rng, **env: str) -> tuple[bytes, bytes]:
    """The model trained on 512 random digits in this process, and in a new process whose
    environment adds `env`, as .keras bytes."""
    images, labels = random_digits(rng, 512)
    split = tmp_path / "train"
    artifacts.write_split(split, "train", (images / 255.0).astype(np.float32), labels)
    here, there = tmp_path / "here.keras", tmp_path / "there.keras"
    train.train(split, here, tmp_path / "here.csv", **AVX2_SETTINGS)
    subprocess.run(
        [sys.executable, "-c", TRAIN_IN_A_PROCESS, split, there, tmp_path / "there.csv"],
        cwd=ROOT,
        env=dict(os.environ, **env),
        check=True,
        capture_output=True,
    )
    return here.read_bytes(), there.read_bytes()


def test_a_cpu_with_avx2_only_trains_the_same_bytes_as_this_one(tmp_path, rng):
    """oneDNN, under TensorFlow, runs other code on a CPU with AVX-512 than on one with AVX2
    only. A training in a process that takes this CPU for an AVX2 one
    (ONEDNN_MAX_CPU_ISA=AVX2) gives the bytes of one in this process, because the stages
    hold oneDNN to AVX2 everywhere. (The check has teeth on a CPU with AVX-512, such as the
    Xeon it was written on, where it fails without that hold; elsewhere both runs are AVX2.)"""
    here, there = trained_here_and_in_a_process(tmp_path, rng, ONEDNN_MAX_CPU_ISA="AVX2")
    assert here == there


KERAS_WITHOUT_EXTRAS = """
import sys
from digits import repeatable
keras = repeatable.import_keras()
extras = ("sklearn", "scipy.stats", "matplotlib", "pandas", "IPython")
print(*(name in sys.modules for name in extras))
import sklearn.linear_model
import matplotlib.pyplot
import pandas
import IPython
print(type(sklearn.linear_model.LogisticRegression()).__name__, matplotlib.pyplot.__name__,
      type(pandas.DataFrame()).__name__, IPython.__name__)
"""

KERAS_AFTER_EXTRAS = """
import sys
import sklearn
import matplotlib.pyplot
import matplotlib.patches
import pandas
import IPython
from digits import repeatable
keras = repeatable.import_keras()
from keras.src.visualization import plot_bounding_box_gallery, plot_image_gallery
from keras.src.wrappers import fixes
from keras.src.trainers.data_adapters import array_slicing
from keras.src.saving import file_editor
print(fixes.sklearn is sklearn, plot_image_gallery.plt is matplotlib.pyplot,
      plot_bounding_box_gallery.patches is matplotlib.patches, array_slicing.pandas is pandas,
      file_editor.ipython is IPython)
"""


def test_keras_loads_without_its_optional_extras_which_stay_importable():
    """import_keras skips the scikit-learn, matplotlib, pandas and IPython imports Keras
    makes for features no stage uses (a training's process starts about 1.7 s sooner, in two
    measurements: docs/benchmarks.md); the process can still import each after it, and one
    that imported them first keeps Keras' features whole."""
    first = run([sys.executable, "-c", KERAS_WITHOUT_EXTRAS], ROOT)
    assert first.stdout.split() == [
        "False", "False", "False", "False", "False",
        "LogisticRegression", "matplotlib.pyplot", "DataFrame", "IPython",
    ]  # fmt: skip
    second = run([sys.executable, "-c", KERAS_AFTER_EXTRAS], ROOT)
    assert second.stdout.split() == ["True"] * 5


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = scores.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), classes=3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [0, 1, 0]])


def test_per_class_scores_match_their_definitions():
    matrix = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 0]])
    found = scores.per_class_scores(matrix)
    np.testing.assert_allclose(found["precision"], [1.0, 1 / 3, 0.0])
    np.testing.assert_allclose(found["recall"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(found["f1"], [2 / 3, 0.5, 0.0])
    assert list(found["support"]) == [2, 1, 1]


def test_the_hardest_digit_is_one_with_test_images_in_a_small_test_set():
    """`prepare.test_size: 20` keeps MNIST's first 20 test images, which hold no 8: its recall
    is undefined (evaluate writes 0), so it is neither the hardest digit nor a row per digit."""
    true = np.array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4])
    predicted = true.copy()
    predicted[8] = 6  # One of the two 5s is read as a 6: the 5's recall is 50%.
    matrix = scores.confusion_matrix(true, predicted)
    per_class = scores.per_class_scores(matrix)
    assert per_class.loc[8, "support"] == 0 and per_class.loc[8, "recall"] == 0
    found = values.confusion_values(matrix, per_class, summary.most_confused(matrix, top=5))
    assert found["hardest_digit"] == {"digit": 5, "recall": 0.5}
    assert found["easiest_digit"] == {"digit": 0, "recall": 1.0}
    assert [row["digit"] for row in found["per_digit"]] == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    assert found["most_confused_digit"] == {"digit": 5, "digits": [5], "count": 1}
    perfect = scores.confusion_matrix(true, true)
    found = values.confusion_values(
        perfect, scores.per_class_scores(perfect), summary.most_confused(perfect, top=5)
    )
    assert 8 not in found["most_confused_digit"]["digits"]  # A tie at 0 mistakes.
    assert found["hardest_digit"] == {"digit": 0, "recall": 1.0}
    table = summary.per_digit_table(matrix, per_class)
    assert list(table["digit"]) == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    assert list(table["right"]) == [3, 3, 1, 1, 3, 1, 1, 2, 4]
    assert table.loc[table["digit"] == 5, "recall"].item() == "50.00%"


def test_predictions_table_takes_the_most_probable_digit():
    probabilities = np.array([[0.1, 0.9], [0.7, 0.3]], dtype=np.float32)
    table = scores.predictions_table(np.array([1, 1]), probabilities)
    assert list(table.columns) == ["index", "true", "predicted", "confidence"]
    assert list(table["predicted"]) == [1, 0]
    np.testing.assert_allclose(table["confidence"], [0.9, 0.7])


def test_most_confused_pairs_are_sorted_by_count():
    matrix = np.array([[5, 2, 0], [0, 5, 3], [2, 0, 5]])
    pairs = summary.most_confused(matrix, top=2)
    assert list(zip(pairs["true"], pairs["predicted"], pairs["count"], strict=True)) == [
        (1, 2, 3),
        (0, 1, 2),
    ]


def test_the_chain_from_raw_arrays_to_figures(prepared, tmp_path, monkeypatch):
    titles = []
    draw_first = render.first_prediction

    def first_prediction(*args):
        figure = draw_first(*args)
        titles.append(figure.axes[0].get_title())
        return figure

    monkeypatch.setattr(render, "first_prediction", first_prediction)
    reports = tmp_path / "reports"
    train.train(
        prepared / "train", tmp_path / "model.keras", reports / "history.csv", **TRAIN_SETTINGS
    )
    scores = evaluate.evaluate(
        tmp_path / "model.keras",
        prepared / "test",
        reports / "metrics.json",
        reports / "predictions.csv",
        reports / "confusion.csv",
        reports / "per_class.csv",
        reports / "network.json",
    )
    network = json.loads((reports / "network.json").read_text())
    assert [layer["type"] for layer in network["layers"]] == ["flatten", "dense", "dense"]
    kernel = np.frombuffer(base64.b64decode(network["layers"][1]["kernel"]), dtype="<f4")
    trained = keras.models.load_model(tmp_path / "model.keras").layers[1].get_weights()[0]
    assert np.array_equal(kernel.reshape(trained.shape), trained)
    predictions = pd.read_csv(reports / "predictions.csv")
    right = int((predictions["true"] == predictions["predicted"]).sum())
    assert scores["images"] == 30
    assert scores["accuracy"] == pytest.approx(right / 30, abs=1e-6)
    assert len(predictions) == 30 and predictions["predicted"].between(0, 9).all()
    confusion = pd.read_csv(reports / "confusion.csv")
    assert confusion.drop(columns="true").to_numpy().sum() == 30
    assert len(pd.read_csv(reports / "per_class.csv")) == 10

    render_reports(prepared / "test", reports, misclassified=4)
    figures = sorted(p.name for p in (reports / "figures").iterdir())
    assert figures == [
        "confusion_matrix.png",
        "first_prediction.png",
        "misclassified.png",
        "prediction_grid.png",
        "training_curves.png",
    ]
    for figure in (reports / "figures").iterdir():
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.fullmatch(r"Predicted: \d \(\d+\.\d% sure\)\nTrue: \d", titles[0])
    summary_text = (reports / "summary.md").read_text()
    right = int(np.trace(confusion.drop(columns="true").to_numpy()))
    assert f"{right} of 30 test digits right" in summary_text
    assert "## Most confused pairs" in summary_text


def test_the_grid_colours_right_blue_and_wrong_red(rng):
    images = rng.random((4, 28, 28))
    figure = render.prediction_grid(images, np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4]), size=2)
    titles = [(axes.get_title(), axes.title.get_color()) for axes in figure.axes]
    assert titles == [
        ("Pred: 1\nTrue: 1", "blue"),
        ("Pred: 2\nTrue: 2", "blue"),
        ("Pred: 0\nTrue: 3", "red"),
        ("Pred: 4\nTrue: 4", "blue"),
    ]


def test_render_never_imports_tensorflow():
    code = "import sys, stages.render; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def resolved_command(project, stage: str) -> list[str]:
    """The stage's cmd as DVC resolves it from dvc.yaml, split into words."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        (resolved,) = repo.stage.collect(stage)
    return resolved.cmd.split()


@pytest.mark.parametrize("stage", ["train", "variant_settings@cnn"])
def test_a_params_mistake_is_reported_before_tensorflow_is_imported(stage, tmp_path):
    project = copy_project(tmp_path / "project")
    params = (project / "params.yaml").read_text().replace("epochs: 5 ", "epochs: 0 ")
    (project / "params.yaml").write_text(params)
    command = resolved_command(project, stage)
    code = (
        f"import sys, {command[2]} as s\n"
        "try:\n    s.main(sys.argv[1:])\nexcept Exception as error:\n    print(error)\n"
        "print('tensorflow' in sys.modules)"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code, *command[3:]],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.splitlines() == [
        "params.yaml: train.epochs = 0 is not a whole number from 1 to 1000",
        "False",
    ], result.stderr


def test_rendering_twice_gives_the_same_png_bytes(rng, tmp_path):
    images = rng.random((9, 28, 28))
    for name in ("a.png", "b.png"):
        artifacts.write_png(
            render.prediction_grid(images, np.arange(9), np.arange(9), size=3), tmp_path / name
        )
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def figure_texts(figure) -> list[str]:
    return [text.get_text() for text in figure.texts]


def test_the_gallery_says_why_it_is_empty(rng):
    images = rng.random((4, 28, 28))
    wrong = pd.DataFrame({"index": [1, 3], "true": [4, 9], "predicted": [9, 4], "confidence": 0.6})
    assert figure_texts(render.misclassified_gallery(images, wrong, 0)) == [
        "2 misclassified digits; render.misclassified is 0, so none shown"
    ]
    assert figure_texts(render.misclassified_gallery(images, wrong.head(0), 5)) == [
        "No misclassified digits to show"
    ]
    shown = render.misclassified_gallery(images, wrong, 5)
    assert [axes.get_title() for axes in shown.axes] == [
        "#1: Pred 9\nTrue 4 (60%)",
        "#3: Pred 4\nTrue 9 (60%)",
    ]


def test_the_batches_come_in_a_new_seeded_order_every_epoch():
    from digits.model import shuffled_batches

    batches = shuffled_batches(np.arange(10) * 10, np.arange(10), batch_size=4, seed=42)
    assert len(batches) == 3

    def epoch() -> list[list[int]]:
        return [batches[i][1].tolist() for i in range(len(batches))]

    # The images travel with their labels, and each batch is read front to back.
    assert [batches[i][0].tolist() for i in range(3)][0] == [0, 50, 60, 70]
    assert epoch() == [[0, 5, 6, 7], [2, 3, 4, 9], [1, 8]]
    batches.on_epoch_end()
    assert epoch() == [[2, 4, 6, 8], [3, 5, 7, 9], [0, 1]]


def test_the_page_gets_every_layer_that_acts_at_prediction_time():
    model = build_model(kind="cnn", hidden_units=[16], activation="leaky_relu", rotation=10, seed=1)
    layers = evaluate.network_spec(model)["layers"]
    assert [layer["type"] for layer in layers] == [
        "reshape", "conv2d", "leaky_relu", "max_pool", "conv2d", "leaky_relu", "max_pool",
        "flatten", "dense", "leaky_relu", "dense",
    ]  # fmt: skip
    assert layers[0]["shape"] == [28, 28, 1]
    assert layers[1]["kernel_size"] == [5, 5] and layers[1]["filters"] == 32
    assert layers[2]["negative_slope"] == pytest.approx(0.1)
    assert layers[3] == {"type": "max_pool", "pool_size": 2, "strides": 2}
    assert layers[-1]["activation"] == "softmax"


def test_a_layer_the_page_cannot_run_is_refused_by_name():
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.LayerNormalization(name="norm")], name="odd"
    )
    with pytest.raises(cli.StageError, match=r"^the course page cannot run a LayerNormalization"):
        evaluate.network_spec(model)
