"""Face reenactment on a camera: [video_source] -> face_reenactment (lifecycle, auto-activated).

    ros2 launch face_tracker_ros reenactment.launch.py                              # synthetic camera
    ros2 launch face_tracker_ros reenactment.launch.py source:=/dev/video0 side_by_side:=true
    ros2 launch face_tracker_ros reenactment.launch.py start_source:=false image:=/camera/image_raw \
        params_file:=my_reenactment.yaml        # e.g. with model_path: <your exported generator>

The node subscribes ``<ns>/image`` (remapped to the ``image`` argument) and publishes
``<ns>/image_reenacted`` (and ``<ns>/image_side_by_side``) with the camera's header; parameters
are in ``config/reenactment.yaml`` (or ``params_file``).
"""

from face_tracker_ros.launch_common import PACKAGE, autostart, camera_source, launch_description, params_file_or

#: What this file starts, as data, so tests can check it without ``launch`` installed:
#: (executable, node name, params file in config/, condition argument or None).
NODES = (
    ("video_source_node", "video_source", "video_source.yaml", "start_source"),
    ("face_reenactment_node", "face_reenactment", "reenactment.yaml", None),
)
ARGUMENTS = {
    "image": ("/camera/image_raw", "camera image topic the node subscribes to (absolute name)"),
    "namespace": ("face_reenactment", "namespace of the node's outputs"),
    "params_file": ("", "node parameters YAML (default: the package's config/reenactment.yaml)"),
    "side_by_side": ("false", "also publish image_side_by_side (camera | sketch | output)"),
    "start_source": ("true", "start video_source_node (false when a camera driver already runs)"),
    "source": ("synthetic", "video source: synthetic | /dev/videoN | video file"),
    "fastdds_profile": ("true", "use the package's Fast DDS shared-memory profile (large images)"),
}


def generate_launch_description():
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode
    from launch_ros.parameter_descriptions import ParameterValue

    overrides = {"autostart": False,
                 "publish_side_by_side": ParameterValue(LaunchConfiguration("side_by_side"), value_type=bool)}
    reenact = LifecycleNode(
        package=PACKAGE, executable="face_reenactment_node", name="face_reenactment",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[params_file_or("reenactment.yaml"), overrides],
        remappings=[("image", LaunchConfiguration("image"))])
    return launch_description(ARGUMENTS, [camera_source(), reenact, *autostart(reenact)])
