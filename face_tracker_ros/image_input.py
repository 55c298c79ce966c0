"""Image transport for the nodes: raw ``sensor_msgs/Image`` or ``<image>/compressed``, in and out.

rclpy has no image_transport plugins, so the choice is made here, once, for every node:

* ``image_transport: raw`` subscribes ``sensor_msgs/Image`` on the base topic (``image``);
* ``image_transport: compressed`` subscribes ``sensor_msgs/CompressedImage`` (JPEG/PNG, decoded
  with OpenCV in :func:`~face_tracker_ros.conversions.image_to_bgr`) on ``<base>/compressed``,
  where ``<base>`` is the base topic *after remapping* (``image:=/camera/image_raw`` reads
  ``/camera/image_raw/compressed``), as image_transport names it.

:class:`CompressedOutput` publishes an output image as ``<base>/compressed`` beside the raw one.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from .conversions import bgr_to_compressed
from .params import declare, image_qos

#: Values of the ``image_transport`` parameter.
TRANSPORTS = ("raw", "compressed")


def declare_transport(node, name: str = "image_transport") -> str:
    """Declare the read-only ``image_transport`` parameter (``raw`` | ``compressed``) and return it."""
    return declare(node, name, "raw",
                   "raw = sensor_msgs/Image on 'image'; compressed = sensor_msgs/CompressedImage (JPEG/PNG) "
                   "on '<image after remapping>/compressed'", choices=TRANSPORTS, read_only=True)


def transport_topic(node, base: str, transport: str) -> str:
    """Topic a ``transport`` subscription or publication of ``base`` uses (remapping of ``base`` applied)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"image_transport must be one of {TRANSPORTS}, got '{transport}'")
    return base if transport == "raw" else node.resolve_topic_name(base) + "/compressed"


def sibling_topic(node, base: str, name: str) -> str:
    """``name`` beside ``base`` (``/cam/image_raw`` -> ``/cam/camera_info``), unless ``name`` itself is remapped.

    The camera_info convention of image_transport's camera subscriber: a camera publishes its
    ``camera_info`` in the namespace of its image topic.
    """
    explicit = node.resolve_topic_name(name)
    if explicit != node.resolve_topic_name(name, only_expand=True):
        return explicit
    full = node.resolve_topic_name(base)
    return full.rsplit("/", 1)[0] + "/" + name


def subscribe_image(node, base: str, transport: str, callback: Callable, qos, **kwargs):
    """Subscribe to camera images on ``base`` with ``transport`` (see the module docstring).

    The callback receives ``Image`` or ``CompressedImage``; both decode with ``image_to_bgr``.
    ``kwargs`` go to ``create_subscription`` (``callback_group``, ``event_callbacks``...).
    """
    msg_type = CompressedImage if transport == "compressed" else Image
    return node.create_subscription(msg_type, transport_topic(node, base, transport), callback, qos, **kwargs)


class CompressedOutput:
    """An optional ``<base>/compressed`` output image (JPEG), parameters ``<param_prefix>_compressed``
    and ``<param_prefix>_jpeg_quality``.

    Args:
        node: a lifecycle node (the publisher is a lifecycle publisher, made in :meth:`configure`).
        base: output topic of the raw image (``image_annotated``).
        param_prefix: parameter name prefix (``publish_annotated``).
    """

    def __init__(self, node, base: str, param_prefix: str) -> None:
        self._node, self._base = node, base
        self.enabled = declare(node, f"{param_prefix}_compressed", False,
                               f"also publish {base}/compressed (sensor_msgs/CompressedImage, JPEG)", read_only=True)
        self.quality = declare(node, f"{param_prefix}_jpeg_quality", 80, f"JPEG quality of {base}/compressed",
                               range=(1, 100), step=1, read_only=True)
        self._pub = None

    def configure(self) -> None:
        if self.enabled and self._pub is None:
            topic = transport_topic(self._node, self._base, "compressed")
            self._pub = self._node.create_lifecycle_publisher(CompressedImage, topic, image_qos(False, 1))

    def cleanup(self) -> None:
        if self._pub is not None:
            self._node.destroy_publisher(self._pub)
            self._pub = None

    def publish(self, bgr: Optional[np.ndarray], header) -> None:
        """Encode and publish ``bgr`` with ``header`` (nothing when disabled or ``bgr`` is ``None``)."""
        pub = self._pub
        if pub is not None and bgr is not None:
            pub.publish(bgr_to_compressed(bgr, header, "jpeg", self.quality))
