"""In-process rclpy test harness: real publishers, nodes and subscribers in one process.

Importing this module keeps DDS on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) and
gives the test process its own ``ROS_DOMAIN_ID`` (unless one was set), before rclpy starts.
Every wait is bounded in time; discovery is awaited (publisher matched), never slept on.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, List, Optional

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(_ROOT, "config", "fastdds_shm.xml"))

import pytest  # noqa: E402

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup.sh)")
pytest.importorskip("vision_msgs.msg", reason="vision_msgs not built (run scripts/setup.sh)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import Header  # noqa: E402


class RosHarness:
    """A private rclpy context + an executor spinning in a background thread.

    Usage::

        with RosHarness() as ros:
            node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[...]))
            helper = ros.node("helper")
            ...
    """

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        # One callback thread: a thread pool only adds GIL contention with the nodes' own worker
        # threads and the tests' publishing threads (with 4 pool threads a CI run measured Haar at
        # 286 ms a frame under a 120 fps stream; the demo and the reliability driver did the same).
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: List[Node] = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = False
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                if self._stop:
                    return
                raise

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def node(self, name: str) -> Node:
        return self.add(Node(name, context=self.context))

    @staticmethod
    def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
        """Poll ``predicate`` until true or ``timeout`` seconds pass; returns the last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())

    def wait_matched(self, publisher, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``publisher`` has ``count`` matched subscriptions (DDS discovery done)."""
        if not self.wait_for(lambda: publisher.get_subscription_count() >= count, timeout):
            raise TimeoutError(f"no subscriber matched {publisher.topic_name} within {timeout} s")

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5.0)
        for n in self.nodes:
            try:
                self.executor.remove_node(n)
                n.destroy_node()
            except Exception:  # noqa: BLE001
                pass
        self.executor.shutdown(timeout_sec=2.0)
        if self.context.ok():
            rclpy.shutdown(context=self.context)

    def __enter__(self) -> "RosHarness":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Collector:
    """Subscription that keeps every message it receives (thread-safe list)."""

    def __init__(self, node: Node, msg_type, topic: str, qos=10) -> None:
        self.msgs: list = []
        self._lock = threading.Lock()
        self.sub = node.create_subscription(msg_type, topic, self._cb, qos)

    def _cb(self, msg) -> None:
        with self._lock:
            self.msgs.append(msg)

    def snapshot(self) -> list:
        with self._lock:
            return list(self.msgs)

    def find(self, predicate) -> Optional[object]:
        for m in self.snapshot():
            if predicate(m):
                return m
        return None


def stamped_header(sec: int, nanosec: int, frame_id: str) -> Header:
    """A ``std_msgs/Header`` whose stamp and frame tell one test message from the others."""
    h = Header()
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    h.frame_id = frame_id
    return h


def header_key(h: Header) -> tuple:
    """``(sec, nanosec, frame_id)``: equal for a message and the outputs that carry its header."""
    return (h.stamp.sec, h.stamp.nanosec, h.frame_id)


def send_and_wait(ros: RosHarness, pub, col: Collector, msg, timeout: float = 30.0):
    """Publish ``msg`` and return the message of ``col`` with the same header (None after ``timeout`` s)."""
    pub.publish(msg)
    ok = ros.wait_for(lambda: col.find(lambda m: header_key(m.header) == header_key(msg.header)) is not None, timeout)
    return col.find(lambda m: header_key(m.header) == header_key(msg.header)) if ok else None
