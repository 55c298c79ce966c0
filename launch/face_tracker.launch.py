"""Face tracking on a camera: [video_source] -> face_tracker (lifecycle, auto-activated) [-> rviz2].

    ros2 launch face_tracker_ros face_tracker.launch.py                        # embedded synthetic camera
    ros2 launch face_tracker_ros face_tracker.launch.py start_source:=false image:=/camera/image_raw
    ros2 launch face_tracker_ros face_tracker.launch.py source:=/dev/video0 rviz:=true

Topics: the tracker subscribes ``<ns>/image`` (remapped to ``image``), publishes
``<ns>/detections`` and ``<ns>/image_annotated`` with the camera's header.
"""

import os

PACKAGE = "face_tracker_ros"

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
    params_file = LaunchConfiguration("params_file")
    # camera_info beside the image topic: /camera/image_raw -> /camera/camera_info
    camera_info = PythonExpression(["'/'.join('", image, "'.split('/')[:-1] + ['camera_info'])"])
    tracker_params = PythonExpression(["'", params_file, "' or '", os.path.join(cfg, "face_tracker.yaml"), "'"])

    env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(cfg, "fastdds_shm.xml"),
                                 condition=IfCondition(LaunchConfiguration("fastdds_profile")))
    source = Node(
        package=PACKAGE, executable="video_source_node", name="video_source", output="screen",
        parameters=[os.path.join(cfg, "video_source.yaml"),
                    # value_type=str: source:=0 (a camera index) would otherwise reach the node as an int
                    {"source": ParameterValue(LaunchConfiguration("source"), value_type=str)}],
        remappings=[("image", image), ("camera_info", camera_info)],
        condition=IfCondition(LaunchConfiguration("start_source")))
    tracker = LifecycleNode(
        package=PACKAGE, executable="face_tracker_node", name="face_tracker",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[tracker_params, {"autostart": False}],
        remappings=[("image", image)])
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(tracker),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=tracker, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(tracker),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2",
                arguments=["-d", os.path.join(cfg, "face_tracker.rviz")],
                condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription(args + [env, source, tracker, activate, configure, rviz])
