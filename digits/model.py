"""The lesson's network: what it can be, how it is built, and how it is fitted.

The default is the lesson's model: Flatten -> Dense(128, relu) -> Dense(10, softmax),
compiled with adam, sparse categorical cross-entropy and accuracy.

The vocabulary of model.* and train.* (kinds, activations, optimizers) is plain data, so the
train stage's rules can use it without loading TensorFlow; Keras is imported by the functions
that build and fit, when they are called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from digits.repeatable import import_keras

if TYPE_CHECKING:
    import keras

KINDS = ("dense", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "elu", "gelu")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)


def build_model(
    *,
    kind: str = "dense",
    hidden_units: list[int],
    activation: str = "relu",
    leaky_relu_slope: float = 0.1,
    dropout: float = 0.0,
    rotation: float = 0.0,
    zoom: float = 0.0,
    shift: float = 0.0,
    seed: int | None = None,
) -> keras.Model:
    """The lesson's network, or one of the assignment's variations of it.

    dense: Flatten, the hidden Dense layers, a 10-way softmax; `hidden_units=[]` leaves only
    the softmax layer, which is multinomial logistic regression.
    cnn: two blocks of Conv2D and MaxPooling2D (32 and 64 filters of 5x5), then a 25% dropout,
    before the Dense layers.
    rotation (degrees), zoom and shift (fractions) add random augmentation layers, which
    change training images only and pass images through unchanged at prediction time.
    """
    keras = import_keras()
    layers = keras.layers
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout {dropout!r} is not a fraction from 0 to below 1")
    if any(units < 1 for units in hidden_units):
        raise ValueError(f"hidden_units {hidden_units!r} must all be at least 1")
    if not (0 <= rotation <= 180 and 0 <= zoom < 1 and 0 <= shift < 1):
        raise ValueError(
            f"augmentation rotation={rotation!r}, zoom={zoom!r}, shift={shift!r} is out of range: "
            "rotation 0 to 180 degrees, zoom and shift 0 to below 1"
        )

    def activated(layer: type[keras.layers.Layer], *args, name: str) -> list[keras.layers.Layer]:
        """The layer with the activation built in, as the lesson writes Dense(128, "relu");
        LeakyReLU, whose slope is a setting, follows as a layer of its own."""
        if activation == "leaky_relu":
            slope = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"{name}_leaky_relu")
            return [layer(*args, name=name), slope]
        return [layer(*args, activation=activation, name=name)]

    # Layers are named here, not numbered by Keras' per-process counters, so the saved
    # model's config is the same however many models the process built before.
    stack: list[keras.layers.Layer] = [keras.Input(shape=IMAGE_SHAPE, name="image")]
    augment = rotation or zoom or shift
    if kind == "cnn" or augment:
        stack.append(layers.Reshape((*IMAGE_SHAPE, 1), name="add_channel"))
    if rotation:
        stack.append(
            layers.RandomRotation(rotation / 360, fill_mode="constant", seed=seed, name="rotate")
        )
    if zoom:
        stack.append(
            layers.RandomZoom(zoom, fill_mode="constant", seed=_offset(seed, 1), name="zoom")
        )
    if shift:
        stack.append(
            layers.RandomTranslation(
                shift, shift, fill_mode="constant", seed=_offset(seed, 2), name="shift"
            )
        )
    if kind == "cnn":
        # Two blocks of 5x5 convolutions and 2x2 pooling, as in TensorFlow's classic
        # "Deep MNIST" tutorial, then dropout against overfitting the 60,000 images.
        for block, filters in enumerate((32, 64), start=1):
            stack.extend(activated(layers.Conv2D, filters, 5, name=f"conv_{block}"))
            stack.append(layers.MaxPooling2D(2, name=f"pool_{block}"))
        stack.append(layers.Dropout(0.25, seed=_offset(seed, 3), name="conv_dropout"))
    stack.append(layers.Flatten(name="flatten"))
    for number, units in enumerate(hidden_units, start=1):
        stack.extend(activated(layers.Dense, units, name=f"hidden_{number}"))
        if dropout:
            stack.append(
                layers.Dropout(dropout, seed=_offset(seed, 3 + number), name=f"dropout_{number}")
            )
    stack.append(layers.Dense(NUM_CLASSES, activation="softmax", name="digit_probabilities"))
    return keras.Sequential(stack, name=f"digit_predictor_{kind}")


def _offset(seed: int | None, offset: int) -> int | None:
    """A separate seed per random layer, so their random draws are not the same."""
    return None if seed is None else seed + offset


def shuffled_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
    """The training images batch by batch, in a new seeded order every epoch, as a Keras
    PyDataset.

    fit(x, y) would copy the whole array into TensorFlow, twice; reading each batch from the
    memory-mapped array instead keeps training under 1 GiB at the same speed.
    """
    keras = import_keras()

    class ShuffledBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(images))

        def __len__(self) -> int:
            return -(-len(images) // batch_size)

        def __getitem__(self, index: int):
            # Sorted, so each batch reads the memory map front to back.
            rows = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            return images[rows], labels[rows]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(images))

    return ShuffledBatches()


def stop_when_interrupted(interrupts: Sequence[int]):
    """A Keras callback that ends fit() after the current batches once `interrupts` (from
    cli.deferred_interrupts) holds a signal, so the stage can stop cleanly."""
    keras = import_keras()

    class StopWhenInterrupted(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None) -> None:
            if interrupts:
                self.model.stop_training = True

    return StopWhenInterrupted()


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    keras = import_keras()
    # Named for the same reason as the layers: Keras would number a second "adam" "adam_1".
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, name=name)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, name=name)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, name=name)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")
