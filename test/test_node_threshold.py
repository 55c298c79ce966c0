"""The tracker node runs the model's calibrated threshold unless the user sets one.

``detector.score_threshold`` defaults to -1: the node reads the threshold stored beside the model
(``<model>.json``, chosen on validation data when the model was exported). A value set by the user
wins, live; a model swapped in at run time brings its own calibrated threshold.
"""

import json
import shutil

from ros_helpers import RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402

from face_tracker_core.infer import default as default_mod  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402


def _set(node, name, value):
    res = node.set_parameters([Parameter(name, value=value)])[0]
    assert res.successful, res.reason


def test_default_threshold_is_the_models_own_and_a_set_value_wins(tmp_path):
    shipped = json.load(open(default_mod.DEFAULT_MODEL + ".json"))["score_threshold"]
    other = tmp_path / "other.tflite"
    shutil.copy(default_mod.DEFAULT_MODEL, other)
    (tmp_path / "other.tflite.json").write_text(json.dumps({"score_threshold": 0.77}))
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("no_input_warn_s", value=60.0), Parameter("publish_annotated", value=False)]))
        assert ros.wait_for(lambda: node.pipeline is not None, 60), "node did not configure"
        assert node.get_parameter("detector.score_threshold").value == -1.0
        assert node.p_score == shipped
        assert node.pipeline.tracker.config.high_score == shipped
        _set(node, "detector.score_threshold", 0.65)
        assert node.p_score == 0.65 and node.pipeline.tracker.config.high_score == 0.65
        _set(node, "detector.score_threshold", -1.0)
        assert node.p_score == shipped
        _set(node, "detector.model_path", str(other))  # hot reload: the new model's own threshold
        assert node.p_score == 0.77 and node.pipeline.tracker.config.high_score == 0.77
        assert "other.tflite" in node.pipeline.detector.describe()
