"""Face reenactment on a camera: [video_source] -> face_reenactment (lifecycle, auto-activated).

    ros2 launch face_tracker_ros reenactment.launch.py                              # synthetic camera
    ros2 launch face_tracker_ros reenactment.launch.py source:=/dev/video0 side_by_side:=true
    ros2 launch face_tracker_ros reenactment.launch.py start_source:=false image:=/camera/image_raw \
        params_file:=my_reenactment.yaml        # e.g. with model_path: <your exported generator>

The node subscribes ``<ns>/image`` (remapped to the ``image`` argument) and publishes
``<ns>/image_reenacted`` (and ``<ns>/image_side_by_side``) with the camera's header; parameters
are in ``config/reenactment.yaml`` (or ``params_file``).
"""

import os

PACKAGE = "face_tracker_ros"

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
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.events import matches_action
    from launch.substitutions import LaunchConfiguration, PythonExpression
    from launch_ros.actions import LifecycleNode, Node
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from launch_ros.parameter_descriptions import ParameterValue
    from lifecycle_msgs.msg import Transition

    share = get_package_share_directory(PACKAGE)
    cfg = os.path.join(share, "config")
    args = [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()]
    image = LaunchConfiguration("image")
    camera_info = PythonExpression(["'/'.join('", image, "'.split('/')[:-1] + ['camera_info'])"])
    params = PythonExpression(["'", LaunchConfiguration("params_file"), "' or '",
                               os.path.join(cfg, "reenactment.yaml"), "'"])
    overrides = {"autostart": False,
                 "publish_side_by_side": ParameterValue(LaunchConfiguration("side_by_side"), value_type=bool)}
    env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(cfg, "fastdds_shm.xml"),
                                 condition=IfCondition(LaunchConfiguration("fastdds_profile")))
    source = Node(
        package=PACKAGE, executable="video_source_node", name="video_source", output="screen",
        parameters=[os.path.join(cfg, "video_source.yaml"),
                    {"source": ParameterValue(LaunchConfiguration("source"), value_type=str)}],
        remappings=[("image", image), ("camera_info", camera_info)],
        condition=IfCondition(LaunchConfiguration("start_source")))
    reenact = LifecycleNode(
        package=PACKAGE, executable="face_reenactment_node", name="face_reenactment",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[params, overrides], remappings=[("image", image)])
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(reenact),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=reenact, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(reenact),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription(args + [env, source, reenact, activate, configure])
