"""Conv -> BatchNorm -> ReLU, the basic block of the multi-face detector.

BatchNorm is folded into the convolution by the TFLite converter, so at inference this costs one
fused convolution.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="face_tracker")
class ConvBNAct(keras.layers.Layer):
    """``k x k`` convolution without bias, batch norm, optional ReLU.

    Args:
        filters: output channels.
        kernel_size: square kernel side.
        strides: 1 or 2.
        activation: apply ReLU after the norm.

    Input ``[B, H, W, C]`` -> output ``[B, H/strides, W/strides, filters]`` ("same" padding).
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1, activation: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = bool(activation)
        self.conv = keras.layers.Conv2D(self.filters, self.kernel_size, strides=self.strides, padding="same",
                                        use_bias=False, name="conv")
        self.bn = keras.layers.BatchNormalization(momentum=0.97, epsilon=1e-3, name="bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))
        self.built = True

    def call(self, x, training=None):
        x = self.bn(self.conv(x), training=training)
        return keras.ops.relu(x) if self.activation else x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                   activation=self.activation)
        return cfg
