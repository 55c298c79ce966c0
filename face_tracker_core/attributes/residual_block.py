"""Basic residual block (ResNet v1 "basic block") for the small attribute backbone."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="face_tracker_attributes")
class ResidualBlock(keras.layers.Layer):
    """3x3 conv + BN + ReLU, 3x3 conv + BN, plus a shortcut, then ReLU.

    The shortcut is the identity when shapes match and a 1x1 strided conv + BN otherwise, so a
    stack of these trains from scratch on little data without vanishing gradients.

    Args:
        filters: output channels.
        strides: 1 or 2 (applied by the first conv and the shortcut).
        weight_decay: L2 factor on conv kernels (0 disables).

    Input ``[B, H, W, C]`` -> output ``[B, H/strides, W/strides, filters]`` ("same" padding).
    """

    def __init__(self, filters: int, strides: int = 1, weight_decay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.weight_decay = float(weight_decay)
        reg = keras.regularizers.L2(self.weight_decay) if self.weight_decay > 0 else None
        self.conv1 = keras.layers.Conv2D(self.filters, 3, strides=self.strides, padding="same", use_bias=False,
                                         kernel_regularizer=reg, name="conv1")
        self.bn1 = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name="bn1")
        self.conv2 = keras.layers.Conv2D(self.filters, 3, padding="same", use_bias=False,
                                         kernel_regularizer=reg, name="conv2")
        # Zero-init the last BN scale: each block starts as the identity (Goyal et al. 2017).
        self.bn2 = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, gamma_initializer="zeros",
                                                   name="bn2")
        self.proj = None
        self.proj_bn = None

    def build(self, input_shape):
        self.conv1.build(input_shape)
        s1 = self.conv1.compute_output_shape(input_shape)
        self.bn1.build(s1)
        self.conv2.build(s1)
        self.bn2.build(s1)
        if self.strides != 1 or input_shape[-1] != self.filters:
            reg = keras.regularizers.L2(self.weight_decay) if self.weight_decay > 0 else None
            self.proj = keras.layers.Conv2D(self.filters, 1, strides=self.strides, use_bias=False,
                                            kernel_regularizer=reg, name="proj")
            self.proj_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name="proj_bn")
            self.proj.build(input_shape)
            self.proj_bn.build(s1)
        self.built = True

    def call(self, x, training=None):
        y = keras.ops.relu(self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(y), training=training)
        s = x if self.proj is None else self.proj_bn(self.proj(x), training=training)
        return keras.ops.relu(y + s)

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, strides=self.strides, weight_decay=self.weight_decay)
        return cfg
