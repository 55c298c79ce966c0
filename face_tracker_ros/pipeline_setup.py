"""The ``detector.*`` / ``tracking.*`` parameters of the nodes that run a face detector.

They become the ``detector`` and ``tracking`` sections of a
:class:`~face_tracker_core.pipeline_config.PipelineConfig`; the rule that turns
``detector.backend`` / ``detector.model_path`` into a detector
(:func:`face_tracker_core.pipeline_config.load_detector`) lives in the core, so every node and tool
behaves the same.
"""

from __future__ import annotations

from rclpy.node import Node

from face_tracker_core.pipeline_config import PipelineConfig

from .tracker_params import PIPELINE_TABLE, declare_table


def declare_pipeline_params(node: Node, read_only: bool = True) -> PipelineConfig:
    """Declare ``detector.{backend,model_path,score_threshold}`` and ``tracking.{enabled,min_hits,
    low_score,max_age_s}`` on ``node`` (descriptors with descriptions and ranges) and return their values
    as the ``detector`` and ``tracking`` sections of a :class:`PipelineConfig` (the other sections default).

    Args:
        node: the node.
        read_only: declare them read-only (a node that does not apply them at run time).
    """
    return PipelineConfig.from_config(declare_table(node, PIPELINE_TABLE, read_only=read_only))


__all__ = ["declare_pipeline_params"]
