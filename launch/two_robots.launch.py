"""Several robots' face trackers on one host, one namespace per robot: [video_source] -> face_tracker.

    ros2 launch face_tracker_ros two_robots.launch.py                          # robot1 + robot2, synthetic cameras
    ros2 launch face_tracker_ros two_robots.launch.py robots:=tb1,tb2,tb3 start_source:=false

Per robot ``<r>``: the camera publishes ``/<r>/camera/image_raw`` (+ ``camera_info``), the tracker
``/<r>/face_tracker/face_tracker`` subscribes to it and publishes ``/<r>/face_tracker/detections``
and ``image_annotated``; nothing of one robot subscribes to another's topics. Each tracker is a
lifecycle node configured then activated by this file, like in ``face_tracker.launch.py``.
"""

import os

from face_tracker_ros.launch_common import PACKAGE, autostart, config_dir, launch_description, video_source

#: What this file starts per robot, as data, so tests can check it without ``launch`` installed:
#: (executable, node name, params file in config/, condition argument or None).
NODES = (
    ("video_source_node", "video_source", "video_source.yaml", "start_source"),
    ("face_tracker_node", "face_tracker", "face_tracker.yaml", None),
)
ARGUMENTS = {
    "robots": ("robot1,robot2", "comma-separated robot namespaces, one tracker (and camera) each"),
    "params_file": ("", "tracker parameters YAML for every robot (default: the package's config/face_tracker.yaml)"),
    "start_source": ("true", "start a video_source_node per robot (false when camera drivers already run)"),
    "source": ("synthetic", "video source of every robot's video_source_node: synthetic | /dev/videoN | file"),
    "fastdds_profile": ("true", "use the package's Fast DDS shared-memory profile (large images)"),
}


def _robot(robot: str, params_file: str):
    """The actions of one robot: its camera, its tracker and the tracker's lifecycle transitions."""
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode

    image = f"/{robot}/camera/image_raw"
    source = video_source(LaunchConfiguration("source"), namespace=robot, frame_id=f"{robot}/camera_optical_frame",
                          remappings=[("image", image), ("camera_info", f"/{robot}/camera/camera_info")],
                          condition=IfCondition(LaunchConfiguration("start_source")))
    tracker = LifecycleNode(
        package=PACKAGE, executable="face_tracker_node", name="face_tracker", namespace=f"{robot}/face_tracker",
        output="screen", parameters=[params_file or os.path.join(config_dir(), "face_tracker.yaml"),
                                     {"autostart": False}],
        remappings=[("image", image)])
    return [source, tracker, *autostart(tracker)]


def _robots(context):
    robots = [r.strip().strip("/") for r in context.launch_configurations["robots"].split(",") if r.strip()]
    if not robots or len(set(robots)) != len(robots):
        raise ValueError(f"robots:={context.launch_configurations['robots']!r}: give distinct namespaces")
    params_file = context.launch_configurations["params_file"]
    return [action for r in robots for action in _robot(r, params_file)]


def generate_launch_description():
    from launch.actions import OpaqueFunction

    return launch_description(ARGUMENTS, [OpaqueFunction(function=_robots)])
