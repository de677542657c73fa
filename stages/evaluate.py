"""Evaluate: score the trained model on the test images (the loss and accuracy of the lesson's
`model.evaluate`, from one `model.predict` pass) and break the score down per digit.

Reads:  --model; --test-set (x_test, y_test).
Writes: --metrics (test loss, accuracy, macro F1, images, the model's weights),
        --predictions (one row per test image: index, true, predicted, confidence),
        --confusion (the 10 x 10 confusion matrix, rows true digits, columns predicted),
        --per-class (precision, recall, F1 and support per digit) and --network
        (the model's layers and weights, for the course page's JavaScript).
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from digits import repeatable, scores
from pipeline import artifacts, cli

# Images per prediction step. The answers do not depend on it; a larger step only saves
# Python's per-step overhead (10,000 images: 1.1 s at Keras' default of 32, 0.2 s at 1,000).
PREDICT_BATCH = 1000

# Layers that pass images through unchanged at prediction time, as Keras runs them.
PASS_THROUGH = {"InputLayer", "Dropout", "RandomRotation", "RandomZoom", "RandomTranslation"}


def encode(weights: np.ndarray) -> str:
    """float32 weights as base64 of their little-endian bytes, the page's Float32Array."""
    return base64.b64encode(np.asarray(weights, dtype="<f4").tobytes()).decode()


def network_spec(model) -> dict:
    """The layers and weights of a trained model, for the course page's JavaScript.

    Only what the pipeline builds is written (digits/model.py): Dense, Conv2D with "valid"
    padding and stride 1, MaxPooling2D, Flatten, Reshape and LeakyReLU; dropout and
    augmentation layers do nothing at prediction time and are left out.
    """
    layers = []
    for layer in model.layers:
        kind, config = type(layer).__name__, layer.get_config()
        if kind in PASS_THROUGH:
            continue
        if kind == "Dense":
            kernel, bias = layer.get_weights()
            layers.append({"type": "dense", "units": config["units"],
                           "activation": config["activation"],
                           "kernel": encode(kernel), "bias": encode(bias)})  # fmt: skip
        elif kind == "Conv2D" and config["padding"] == "valid" and config["strides"] == (1, 1):
            kernel, bias = layer.get_weights()
            layers.append({"type": "conv2d", "filters": config["filters"],
                           "kernel_size": list(config["kernel_size"]),
                           "activation": config["activation"],
                           "kernel": encode(kernel), "bias": encode(bias)})  # fmt: skip
        elif kind == "MaxPooling2D" and config["padding"] == "valid":
            layers.append({"type": "max_pool", "pool_size": config["pool_size"][0],
                           "strides": config["strides"][0]})  # fmt: skip
        elif kind == "Flatten":
            layers.append({"type": "flatten"})
        elif kind == "Reshape":
            layers.append({"type": "reshape", "shape": list(config["target_shape"])})
        elif kind == "LeakyReLU":
            layers.append({"type": "leaky_relu", "negative_slope": config["negative_slope"]})
        else:
            raise cli.StageError(f"the course page cannot run a {kind} layer ({layer.name})")
    return {"layers": layers}


def evaluate(
    model_path: Path,
    test_set: Path,
    metrics_path: Path,
    predictions_path: Path,
    confusion_path: Path,
    per_class_path: Path,
    network_path: Path,
) -> dict[str, float]:
    keras = repeatable.import_keras()

    model = keras.models.load_model(model_path)
    x_test, y_test = artifacts.read_split(test_set, "test")
    # One pass over the test images: the lesson's model.evaluate() would run the network a
    # second time for the loss and accuracy, which follow from the probabilities.
    probabilities = model.predict(x_test, batch_size=PREDICT_BATCH, verbose=0)
    measured = {
        "loss": keras.losses.SparseCategoricalCrossentropy()(y_test, probabilities),
        "accuracy": keras.metrics.SparseCategoricalAccuracy()(y_test, probabilities),
    }

    table = scores.predictions_table(y_test, probabilities)
    matrix = scores.confusion_matrix(table["true"], table["predicted"])
    per_class = scores.per_class_scores(matrix)
    metrics = {
        "test": {
            "loss": round(float(measured["loss"]), 6),
            "accuracy": round(float(measured["accuracy"]), 6),
            "macro_f1": round(float(per_class["f1"].mean()), 6),
            "images": len(table),
            "weights": int(model.count_params()),
        }
    }
    artifacts.write_csv(predictions_path, table)
    artifacts.write_csv(confusion_path, scores.confusion_table(matrix))
    artifacts.write_csv(per_class_path, per_class)
    artifacts.write_json(metrics_path, metrics)
    artifacts.write_json(network_path, network_spec(model))
    print(
        f"evaluate: test accuracy {metrics['test']['accuracy']:.4f}, "
        f"loss {metrics['test']['loss']:.4f} on {len(table)} images"
    )
    return metrics["test"]


def main(argv: list[str] | None = None) -> None:
    files = ("model", "test-set", "metrics", "predictions", "confusion", "per-class", "network")
    args = cli.arguments("evaluate", files, argv)
    # TensorFlow reads the thread count once, when evaluate() imports it, so it is set first.
    repeatable.threads_per_op(repeatable.EVALUATION_THREADS)
    evaluate(
        args.model,
        args.test_set,
        args.metrics,
        args.predictions,
        args.confusion,
        args.per_class,
        args.network,
    )


if __name__ == "__main__":
    cli.run(main)
