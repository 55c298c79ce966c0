"""Capture training frames from a camera topic: [video_source] -> face_capture.

    ros2 launch face_tracker_ros capture.launch.py image:=/camera/image_raw output_dir:=~/faces
    ros2 launch face_tracker_ros capture.launch.py start_source:=true source:=/dev/video0
    ros2 service call /face_capture/enable std_srvs/srv/SetBool "{data: false}"
    ros2 service call /face_capture/snapshot std_srvs/srv/Trigger

The capture node subscribes ``image`` (remapped to the ``image`` argument) and writes into
``output_dir``; parameters are in ``config/capture.yaml`` (or ``params_file``).
"""

from face_tracker_ros.launch_common import PACKAGE, camera_source, launch_description, params_file_or

#: What this file starts, as data, so tests can check it without ``launch`` installed:
#: (executable, node name, params file in config/, condition argument or None).
NODES = (
    ("video_source_node", "video_source", "video_source.yaml", "start_source"),
    ("face_capture_node", "face_capture", "capture.yaml", None),
)
ARGUMENTS = {
    "image": ("/camera/image_raw", "camera image topic to capture"),
    "output_dir": ("~/face_captures", "folder for the frames (an existing one is resumed); "
                   "overrides output_dir of the params file"),
    "params_file": ("", "capture parameters YAML (default: the package's config/capture.yaml)"),
    "start_source": ("false", "also start video_source_node (when no camera driver runs)"),
    "source": ("synthetic", "video source for start_source: synthetic | /dev/videoN | video file"),
    "fastdds_profile": ("true", "use the package's Fast DDS shared-memory profile (large images)"),
}


def generate_launch_description():
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    capture = Node(
        package=PACKAGE, executable="face_capture_node", name="face_capture", output="screen",
        parameters=[params_file_or("capture.yaml"), {"output_dir": LaunchConfiguration("output_dir")}],
        remappings=[("image", LaunchConfiguration("image"))])
    return launch_description(ARGUMENTS, [camera_source(), capture])
