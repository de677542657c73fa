"""The lesson's network and its training settings, built from params.

The default is the lesson's model: Flatten -> Dense(128, relu) -> Dense(10, softmax),
compiled with adam, sparse categorical cross-entropy and accuracy.
"""

from __future__ import annotations

import os

# TensorFlow prints start-up notices unless told otherwise; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from stages import config  # noqa: E402

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = config.NUM_CLASSES
LEAKY_RELU_SLOPE = 0.1


def seed_everything(seed: int) -> None:
    """Make training repeat exactly: same seed, same weights, shuffles and dropout masks."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(
    *, hidden_units: list[int], activation: str = "relu", dropout: float = 0.0
) -> keras.Model:
    """Flatten the 28x28 image, apply the hidden Dense layers, end in a 10-way softmax.

    `hidden_units=[]` leaves only the softmax layer: multinomial logistic regression.
    """
    if activation not in config.ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {', '.join(config.ACTIVATIONS)}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout {dropout!r} is not a fraction from 0 to below 1")
    if any(units < 1 for units in hidden_units):
        raise ValueError(f"hidden_units {hidden_units!r} must all be at least 1")

    # Layers are named here, not numbered by Keras' per-process counters, so the saved
    # model's config is the same however many models the process built before.
    model = keras.Sequential(name="digit_predictor")
    model.add(keras.Input(shape=IMAGE_SHAPE, name="image"))
    model.add(layers.Flatten(name="flatten"))
    for number, units in enumerate(hidden_units, start=1):
        if activation == "leaky_relu":
            model.add(layers.Dense(units, name=f"hidden_{number}"))
            model.add(
                layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, name=f"leaky_relu_{number}")
            )
        else:
            model.add(layers.Dense(units, activation=activation, name=f"hidden_{number}"))
        if dropout:
            model.add(layers.Dropout(dropout, name=f"dropout_{number}"))
    model.add(layers.Dense(NUM_CLASSES, activation="softmax", name="digit_probabilities"))
    return model


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    # Named for the same reason as the layers: Keras would number a second "adam" "adam_1".
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, name=name)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, name=name)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, name=name)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(config.OPTIMIZERS)}")
