"""Parameter and QoS helpers shared by every node: each parameter gets a ParameterDescriptor."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def declare(node: Node, name: str, default: Any, description: str,
            range: Optional[Tuple[float, float]] = None, step: float = 0,
            choices: Optional[Iterable[str]] = None, read_only: bool = False) -> Any:
    """Declare ``name`` with a descriptor (description, numeric range, allowed values) and return its value.

    Args:
        node: the node.
        name: parameter name (dots group parameters, e.g. ``detector.backend``).
        default: default value (its type is the parameter's type); real defaults live in config/*.yaml.
        description: one line for ``ros2 param describe``.
        range: inclusive ``(min, max)`` for numbers.
        step: range step (0 = continuous).
        choices: allowed string values, listed in ``additional_constraints``.
        read_only: cannot change after start-up.
    """
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if range is not None:
        if isinstance(default, bool):
            raise TypeError("bool parameters take no range")
        if isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(range[0]), to_value=int(range[1]), step=int(step))]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(range[0]), to_value=float(range[1]),
                                                            step=float(step))]
    if choices is not None:
        desc.additional_constraints = "one of: " + ", ".join(choices)
    return node.declare_parameter(name, default, desc).value


def image_qos(reliable: bool = False, depth: int = 1) -> QoSProfile:
    """QoS for camera images.

    Sensor-data style by default (best effort, keep last ``depth``, volatile): matches every
    camera driver, and a depth of 1 means we only ever see the newest frame. ``reliable=True``
    is needed to receive from publishers that only offer reliable (e.g. some bag players).
    """
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def describe_qos(q: QoSProfile) -> str:
    """Short human text of a QoS profile for log lines."""
    return f"{q.reliability.name.lower()}, keep_last {q.depth}, {q.durability.name.lower()}"
