"""The lifecycle + newest-frame machinery shared by the image-processing nodes.

A camera can be faster than the model: the subscription callback only keeps the newest image
(replacing one the worker has not taken yet counts as ``dropped``), and one worker thread
processes whatever is newest when it becomes free, so no backlog ever builds. The node is a
lifecycle node; with ``autostart`` it walks itself to *active* (plain-node mode).

Responsive while configuring: the lifecycle services are in a reentrant callback group and the
autostart timer in its own group, so with a multi-threaded executor (``run_node(threads=2)``)
``get_state``, the parameter services and the diagnostics timer answer while ``on_configure``
loads a model in the other thread; ``change_state`` still replies only when the transition is
done, with its true result.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image


class FrameSlot:
    """The newest frame of one input that the worker has not taken yet (guard it with the node's lock).

    Attributes:
        msg: that frame (``None``: nothing waiting).
        rx: its receive time, monotonic seconds.
    """

    def __init__(self) -> None:
        self.msg: Optional[Image] = None
        self.rx = 0.0

    def put(self, msg: Image, now: float, stats: collections.Counter) -> None:
        """Keep ``msg``, received at ``now``; counts it in ``stats["received"]`` and the frame it
        replaces, never processed, in ``stats["dropped"]``."""
        if self.msg is not None:
            stats["dropped"] += 1  # replaced before the worker took it: stale
        self.msg, self.rx = msg, now
        stats["received"] += 1

    def take(self):
        """``(msg, rx)`` of the waiting frame, which leaves the slot."""
        msg, self.msg = self.msg, None
        return msg, self.rx


class LatestFrameNode(LifecycleNode):
    """Base class: subclasses implement :meth:`_process_frame` and create ``self._sub`` (an
    ``Image`` subscription calling :meth:`_on_image`) in ``on_activate`` before calling
    :meth:`_start_worker`.

    Shared state: ``stats`` (a ``Counter`` guarded by ``_cv``: ``received``, ``dropped``,
    ``errors``...), ``_last_error``, ``_active``.
    """

    #: Seconds :meth:`_stop_worker` waits for the worker to finish its frame.
    WORKER_JOIN_S = 10.0

    def __init__(self, node_name: str, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._lifecycle_services_reentrant()
        self._frame = FrameSlot()
        self._cv = threading.Condition()
        self._worker: Optional[threading.Thread] = None
        self._running = False
        self._active = False
        self._sub = None
        self.stats = collections.Counter()
        self._last_error = ""

    # ---------------------------------------------------------------- lifecycle
    def _lifecycle_services_reentrant(self) -> None:
        """Move the lifecycle services out of the default (mutually exclusive) callback group into
        a reentrant one: ``get_state`` then answers while ``change_state`` runs a transition.
        (rclpy's ``LifecycleNode`` takes no callback group argument before Rolling.)"""
        group = ReentrantCallbackGroup()
        for srv in self.services:
            if getattr(srv.srv_type, "__module__", "").startswith("lifecycle_msgs"):
                srv.callback_group = group
                group.add_entity(srv)

    def _schedule_autostart(self) -> None:
        """Configure and activate once the executor runs (a timer, so the transitions happen
        inside the executor, once)."""
        self._autostart_timer = self.create_timer(0.0, self._do_autostart,
                                                  callback_group=MutuallyExclusiveCallbackGroup())

    def _do_autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _start_worker(self, name: str) -> None:
        self._running = True
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()
        self._active = True

    def _stop_worker(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify_all()
        worker, self._worker = self._worker, None
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=self.WORKER_JOIN_S)
            if worker.is_alive():
                self.get_logger().error(f"worker '{worker.name}' still busy after {self.WORKER_JOIN_S:g} s")
            else:
                self.get_logger().info(f"{worker.name} stopped")

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        if self._sub is not None:
            self.destroy_subscription(self._sub)
            self._sub = None
        self._active = False
        return super().on_deactivate(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self):
        self._stop_worker()
        return super().destroy_node()

    def _destroy_publishers(self, *pubs) -> None:
        """Destroy every publisher of ``pubs`` that exists (``None`` entries are skipped)."""
        for pub in pubs:
            if pub is not None:
                self.destroy_publisher(pub)

    def _diagnostic_array(self, st: DiagnosticStatus, values: dict, stats: dict, counters) -> DiagnosticArray:
        """``st`` with ``values`` plus the ``counters`` of ``stats`` as key/values, stamped now."""
        values = dict(values, **{k: str(stats.get(k, 0)) for k in counters})
        st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        return arr

    # ---------------------------------------------------------------- data path
    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        with self._cv:
            self._frame.put(msg, now, self.stats)
            self._on_received(now)
            self._cv.notify()

    def _on_received(self, now: float) -> None:
        """Hook called under ``_cv`` for every received image (``now``: monotonic seconds)."""

    def _work(self) -> None:
        while True:
            with self._cv:
                while self._running and self._frame.msg is None:
                    self._cv.wait(timeout=0.5)
                if not self._running:
                    return
                msg, rx = self._frame.take()
            try:
                self._process_frame(msg, rx)
            except Exception as exc:  # noqa: BLE001 - a node never dies on one bad frame
                if not self.context.ok():
                    return  # shutting down: publishers are gone, nothing to report
                self.stats["errors"] += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"frame skipped after an unexpected error: {self._last_error}")

    def _process_frame(self, msg: Image, rx: float) -> None:
        """Process one frame (worker thread). ``rx``: monotonic receive time, seconds."""
        raise NotImplementedError
