"""Capture training frames from a camera topic: [video_source] -> face_capture.

    ros2 launch face_tracker_ros capture.launch.py image:=/camera/image_raw output_dir:=~/faces
    ros2 launch face_tracker_ros capture.launch.py start_source:=true source:=/dev/video0
    ros2 service call /face_capture/enable std_srvs/srv/SetBool "{data: false}"
    ros2 service call /face_capture/snapshot std_srvs/srv/Trigger

The capture node subscribes ``image`` (remapped to the ``image`` argument) and writes into
``output_dir``; parameters are in ``config/capture.yaml`` (or ``params_file``).
"""

import os

PACKAGE = "face_tracker_ros"

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
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration, PythonExpression
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    share = get_package_share_directory(PACKAGE)
    cfg = os.path.join(share, "config")
    args = [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()]
    image = LaunchConfiguration("image")
    camera_info = PythonExpression(["'/'.join('", image, "'.split('/')[:-1] + ['camera_info'])"])
    params = PythonExpression(["'", LaunchConfiguration("params_file"), "' or '",
                               os.path.join(cfg, "capture.yaml"), "'"])
    env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(cfg, "fastdds_shm.xml"),
                                 condition=IfCondition(LaunchConfiguration("fastdds_profile")))
    source = Node(
        package=PACKAGE, executable="video_source_node", name="video_source", output="screen",
        parameters=[os.path.join(cfg, "video_source.yaml"),
                    # value_type=str: source:=0 (a camera index) would otherwise reach the node as an int
                    {"source": ParameterValue(LaunchConfiguration("source"), value_type=str)}],
        remappings=[("image", image), ("camera_info", camera_info)],
        condition=IfCondition(LaunchConfiguration("start_source")))
    capture = Node(
        package=PACKAGE, executable="face_capture_node", name="face_capture", output="screen",
        parameters=[params, {"output_dir": LaunchConfiguration("output_dir")}],
        remappings=[("image", image)])
    return LaunchDescription(args + [env, source, capture])
