"""The lesson's own script, as one file: the baseline the pipeline is measured against.

It is the lesson's code, changed only to read MNIST from a local mnist.npz (the path in argv[1])
instead of downloading it, and to save its figures (argv[2]) instead of showing them.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

with np.load(sys.argv[1]) as mnist:
    x_train, y_train = mnist["x_train"], mnist["y_train"]
    x_test, y_test = mnist["x_test"], mnist["y_test"]

x_train, x_test = x_train / 255.0, x_test / 255.0

model = tf.keras.models.Sequential(
    [
        tf.keras.layers.Flatten(input_shape=(28, 28)),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5)

test_loss, test_acc = model.evaluate(x_test, y_test)
print("Test accuracy:", test_acc)

predictions = model.predict(x_test)
predicted_labels = np.argmax(predictions, axis=1)

plt.imshow(x_test[0], cmap=plt.cm.binary)
plt.title(f"Predicted: {predicted_labels[0]}")
plt.savefig(f"{sys.argv[2]}/first.png")

plt.figure(figsize=(10, 10))
for i in range(25):
    plt.subplot(5, 5, i + 1)
    plt.xticks([])
    plt.yticks([])
    plt.grid(False)
    plt.imshow(x_test[i], cmap=plt.cm.binary)
    color = "blue" if predicted_labels[i] == y_test[i] else "red"
    plt.xlabel(f"Pred: {predicted_labels[i]}\nTrue: {y_test[i]}", color=color)
plt.savefig(f"{sys.argv[2]}/grid.png")
