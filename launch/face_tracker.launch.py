"""Face tracking on a camera: [video_source] -> face_tracker (lifecycle, auto-activated) [-> rviz2].

    ros2 launch face_tracker_ros face_tracker.launch.py                        # embedded synthetic camera
    ros2 launch face_tracker_ros face_tracker.launch.py start_source:=false image:=/camera/image_raw
    ros2 launch face_tracker_ros face_tracker.launch.py source:=/dev/video0 rviz:=true

Topics: the tracker subscribes ``<ns>/image`` (remapped to ``image``), publishes
``<ns>/detections`` and ``<ns>/image_annotated`` with the camera's header.
"""

import os

from face_tracker_ros.launch_common import (PACKAGE, autostart, camera_source, config_dir, launch_description,
                                           params_file_or)

#: What this file starts, as data, so tests can check it without ``launch`` installed:
#: (executable, node name, params file in config/, condition argument or None).
NODES = (
    ("video_source_node", "video_source", "video_source.yaml", "start_source"),
    ("face_tracker_node", "face_tracker", "face_tracker.yaml", None),
)
ARGUMENTS = {
    "image": ("/camera/image_raw", "camera image topic the tracker subscribes to (absolute name)"),
    "namespace": ("face_tracker", "namespace of the tracker's outputs"),
    "params_file": ("", "tracker parameters YAML (default: the package's config/face_tracker.yaml)"),
    "start_source": ("true", "start video_source_node (false when a camera driver already runs)"),
    "source": ("synthetic", "video source: synthetic | /dev/videoN | video file"),
    "rviz": ("false", "start rviz2 with the annotated image"),
    "fastdds_profile": ("true", "use the package's Fast DDS shared-memory profile (large images)"),
}


def generate_launch_description():
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node

    tracker = LifecycleNode(
        package=PACKAGE, executable="face_tracker_node", name="face_tracker",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[params_file_or("face_tracker.yaml"), {"autostart": False}],
        remappings=[("image", LaunchConfiguration("image"))])
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2",
                arguments=["-d", os.path.join(config_dir(), "face_tracker.rviz")],
                condition=IfCondition(LaunchConfiguration("rviz")))
    return launch_description(ARGUMENTS, [camera_source(), tracker, *autostart(tracker), rviz])
