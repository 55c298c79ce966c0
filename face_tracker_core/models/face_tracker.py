"""The classic FaceTracker of the face-tracking tutorials: one face per image, a class head and a box head.

Kept faithful to the face-tracking tutorial so its users feel at home, with one fix: the box
loss is masked for photos without a face (the tutorials trained the box head towards the zeros of
no-face labels).

Input ``[B, S, S, 3]`` RGB in [0, 1]; outputs ``(class [B, 1] face probability,
box [B, 4] normalised (x1, y1, x2, y2) in [0, 1])``.

``train_step``/``test_step`` use ``tf.GradientTape`` (TensorFlow backend only, like the tutorials).
"""

from __future__ import annotations

import keras

from ..losses import facetracker_losses
from .classic_backbone import build_classic_backbone


@keras.saving.register_keras_serializable(package="face_tracker")
class FaceTracker(keras.Model):
    """Backbone -> (GlobalMaxPooling -> Dense(2048, relu) -> Dense(1, sigmoid)) and
    (GlobalMaxPooling -> Dense(2048, relu) -> Dense(4, sigmoid)).

    Args:
        backbone: ``vgg16``, ``mobilenet_v2`` or ``mobilenet_v3_small``.
        image_size: input side in pixels (the tutorials used 120).
        weights: ``None`` or ``"imagenet"`` for the backbone (only used when building new;
            a loaded model gets its trained weights from the file).
        dense_units: width of the two hidden dense layers.
        cls_weight: weight of the classification loss (``total = box + cls_weight * cls``).
    """

    def __init__(self, backbone: str = "vgg16", image_size: int = 120, weights=None, dense_units: int = 2048,
                 cls_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.backbone_name = backbone
        self.image_size = int(image_size)
        self.init_weights = weights
        self.dense_units = int(dense_units)
        self.cls_weight = float(cls_weight)
        self.backbone = build_classic_backbone(backbone, self.image_size, weights)
        self.cls_pool = keras.layers.GlobalMaxPooling2D(name="cls_pool")
        self.cls_hidden = keras.layers.Dense(self.dense_units, activation="relu", name="cls_hidden")
        self.cls_out = keras.layers.Dense(1, activation="sigmoid", name="cls_out")
        self.box_pool = keras.layers.GlobalMaxPooling2D(name="box_pool")
        self.box_hidden = keras.layers.Dense(self.dense_units, activation="relu", name="box_hidden")
        self.box_out = keras.layers.Dense(4, activation="sigmoid", name="box_out")
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.cls_tracker = keras.metrics.Mean(name="class_loss")
        self.box_tracker = keras.metrics.Mean(name="box_loss")

    def call(self, x, training=False):
        f = self.backbone(x, training=training)
        cls = self.cls_out(self.cls_hidden(self.cls_pool(f)))
        box = self.box_out(self.box_hidden(self.box_pool(f)))
        return cls, box

    @property
    def metrics(self):
        return [self.total_tracker, self.cls_tracker, self.box_tracker]

    def _update(self, total, cls, box):
        self.total_tracker.update_state(total)
        self.cls_tracker.update_state(cls)
        self.box_tracker.update_state(box)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        x, (y_cls, y_box) = data
        with tf.GradientTape() as tape:
            cls, box = self(x, training=True)
            total, lc, lb = facetracker_losses(y_cls, y_box, cls, box, self.cls_weight)
        grads = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._update(total, lc, lb)

    def test_step(self, data):
        x, (y_cls, y_box) = data
        cls, box = self(x, training=False)
        total, lc, lb = facetracker_losses(y_cls, y_box, cls, box, self.cls_weight)
        return self._update(total, lc, lb)

    def get_config(self):
        # weights=None on purpose: a saved model reloads its trained weights from the file and
        # must not try to download ImageNet weights first.
        return {"backbone": self.backbone_name, "image_size": self.image_size, "weights": None,
                "dense_units": self.dense_units, "cls_weight": self.cls_weight, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
