"""The one ``main()`` body every node shares: init, build, spin until a signal or shutdown, clean up.

Shutdown is clean under any signal sequence (SIGINT, SIGINT twice in a row, SIGINT then SIGTERM,
SIGTERM alone): the process installs its own SIGINT/SIGTERM handlers instead of rclpy's, so

* the first signal only asks the spin loop to stop; nothing is raised into whatever the main
  thread is doing (no ``KeyboardInterrupt`` inside a ``join`` or a ``destroy_service``);
* later signals are logged and ignored while the node finishes cleaning up (``ros2 launch``
  without a terminal sends SIGINT on top of the one the process group got, then SIGTERM);
* the ROS context is shut down last, after the executor has stopped and the node (and its
  worker threads) are destroyed, so no callback or worker ever publishes on an invalid context;
* from then on both signals are ignored, through the interpreter's exit.

The process then exits with status 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable, Optional

import rclpy
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from face_tracker_core.errors import FaceTrackerError

_log = logging.getLogger(__name__)

#: Longest time the spin loop waits for work before looking at the shutdown request, seconds.
POLL_S = 0.1


class ShutdownRequest:
    """SIGINT/SIGTERM handlers that set a flag (first signal) and ignore repeats.

    Python runs signal handlers in the main thread between bytecodes; these handlers never raise,
    so a signal can arrive at any point of start-up, spinning or clean-up without a traceback.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals: list = []
        self._logger = None
        for sig in self.SIGNALS:
            signal.signal(sig, self._handle)

    def ignore_from_now(self) -> None:
        """Ignore SIGINT/SIGTERM (clean-up done). Python resets handlers that are functions to the
        default at interpreter exit, which can take seconds after TensorFlow was loaded: a SIGTERM
        then would kill the process (-15); an ignored signal stays ignored."""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def attach_logger(self, logger) -> None:
        """Report signals through the node's ROS logger once the node exists."""
        self._logger = logger

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        self.signals.append(name)
        first = not self.event.is_set()
        self.event.set()
        text = f"{name}: shutting down" if first else f"{name} while shutting down: already stopping"
        if self._logger is not None:
            try:
                self._logger.info(text)
                return
            except Exception:  # noqa: BLE001 - the logger may be gone at the very end
                pass
        _log.info(text)


def make_executor(threads: int, context=None):
    """A single-threaded executor, or a multi-threaded one with ``threads`` threads (>= 2)."""
    if threads <= 1:
        return SingleThreadedExecutor(context=context)
    return MultiThreadedExecutor(num_threads=threads, context=context)


def run_node(factory: Callable[[], Node], args=None, threads: int = 1) -> None:
    """Run one node in its own process until SIGINT/SIGTERM or an rclpy shutdown; exit status 0.

    A :class:`~face_tracker_core.errors.FaceTrackerError` while building the node (camera absent,
    model missing...) has already been logged by the node: the process exits with status 1
    instead of printing a traceback.

    Args:
        factory: builds the node (called after ``rclpy.init``).
        args: command-line arguments for ``rclpy.init`` (ROS remappings, ``--ros-args``...).
        threads: executor threads; lifecycle nodes use 2 so that their services (``get_state``,
            parameters) answer while a transition (model load) runs in the other thread.
    """
    stop = ShutdownRequest()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node: Optional[Node] = None
    executor = None
    try:
        try:
            node = factory()
        except FaceTrackerError:
            raise SystemExit(1)
        stop.attach_logger(node.get_logger())
        executor = make_executor(threads)
        executor.add_node(node)
        while not stop.requested and rclpy.ok():
            executor.spin_once(timeout_sec=POLL_S)
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        _close(executor, node)
        stop.ignore_from_now()


def _try_shutdown() -> None:
    """``rclpy.try_shutdown`` without letting rclpy restore default signal handlers (it would, for
    the default context, and a SIGTERM arriving now would kill the process with status -15)."""
    try:
        rclpy.try_shutdown(uninstall_handlers=False)
    except TypeError:  # Humble: no such argument, and no handler to uninstall
        rclpy.try_shutdown()


def _close(executor, node: Optional[Node]) -> None:
    """Stop the executor (waits for running callbacks), destroy the node (joins its workers), then
    shut the context down: in that order nothing can touch a destroyed publisher or context."""
    if executor is not None:
        _drain(executor, timeout=10.0)
        try:
            executor.shutdown(timeout_sec=10.0)
        except Exception as exc:  # noqa: BLE001 - keep cleaning up
            _log.warning("executor shutdown: %s", exc)
    if node is not None:
        node.destroy_node()
    _try_shutdown()


def _drain(executor, timeout: float) -> None:
    """Wait (at most ``timeout`` s) for the callbacks a multi-threaded executor has already handed
    to its threads. rclpy's ``shutdown`` destroys the executor's wake-up guard condition before
    those run, and each would then end with ``InvalidHandle`` ("The following exception was never
    retrieved"). Errors of these last callbacks are logged."""
    deadline = time.monotonic() + timeout
    for fut in list(getattr(executor, "_futures", ())):
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if fut.done() and fut.exception() is not None:
            _log.error("callback failed during shutdown: %s", fut.exception())
