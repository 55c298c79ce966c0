"""The one ``main()`` body every node shares: init, build, spin until Ctrl-C/shutdown, clean up."""

from __future__ import annotations

from typing import Callable

import rclpy
from rclpy.node import Node

from face_tracker_core.errors import FaceTrackerError


def run_node(factory: Callable[[], Node], args=None) -> None:
    """Run one node in its own process.

    A :class:`~face_tracker_core.errors.FaceTrackerError` while building the node (camera absent,
    model missing...) has already been logged by the node: the process exits with status 1
    instead of printing a traceback.
    """
    rclpy.init(args=args)
    try:
        node = factory()
    except FaceTrackerError:
        rclpy.try_shutdown()
        raise SystemExit(1)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
