"""Face tracking on N cameras in one process: one video_source per camera -> multi_camera_node.

    ros2 launch face_tracker_ros multi_camera.launch.py                                  # 2 synthetic cameras
    ros2 launch face_tracker_ros multi_camera.launch.py cameras:=left,right sources:=/dev/video0,/dev/video2
    ros2 launch face_tracker_ros multi_camera.launch.py cameras:=cam0,cam1,cam2 start_source:=false

Camera ``<cam>`` publishes ``<namespace>/<cam>/image`` (+ ``camera_info``, frame ``<cam>_optical_frame``);
the tracker (one shared detector model, one tracker per camera) publishes ``<namespace>/<cam>/detections``
and ``<namespace>/<cam>/image_annotated`` with that camera's header. With ``start_source:=false`` run
the camera drivers yourself so that they publish ``<namespace>/<cam>/image``.
"""

import os

PACKAGE = "face_tracker_ros"

#: What this file starts, as data, so tests can check it without ``launch`` installed:
#: (executable, node name, params file in config/, condition argument or None). One video_source
#: per camera.
NODES = (
    ("video_source_node", "video_source", "video_source.yaml", "start_source"),
    ("multi_camera_node", "multi_camera_tracker", "multi_camera.yaml", None),
)
ARGUMENTS = {
    "cameras": ("cam0,cam1", "comma-separated camera namespaces"),
    "sources": ("synthetic", "comma-separated video sources, one per camera (/dev/videoN, N, video file or "
                             "synthetic); a single value is used for every camera"),
    "namespace": ("multi_camera", "namespace of the cameras and the tracker"),
    "params_file": ("", "tracker parameters YAML (default: the package's config/multi_camera.yaml)"),
    "start_source": ("true", "start one video_source_node per camera (false when camera drivers already run)"),
    "fastdds_profile": ("true", "use the package's Fast DDS shared-memory profile (large images)"),
}


def split_list(text: str):
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def camera_sources(cameras, sources):
    """One source per camera: a single source is repeated; otherwise the counts must match."""
    if len(sources) == 1:
        sources = sources * len(cameras)
    if len(sources) != len(cameras):
        raise ValueError(f"sources:={','.join(sources)} gives {len(sources)} sources for {len(cameras)} cameras "
                         f"({','.join(cameras)}): give one per camera, or one for all")
    return list(zip(cameras, sources))


def _nodes(context):
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from launch_ros.parameter_descriptions import ParameterValue
    from lifecycle_msgs.msg import Transition

    from ament_index_python.packages import get_package_share_directory

    cfg = os.path.join(get_package_share_directory(PACKAGE), "config")
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    cameras = split_list(value("cameras"))
    pairs = camera_sources(cameras, split_list(value("sources")))
    ns = value("namespace")
    actions = []
    if value("start_source").lower() in ("true", "1", "yes"):
        for cam, src in pairs:
            actions.append(Node(
                package=PACKAGE, executable="video_source_node", name="video_source",
                namespace=f"{ns}/{cam}" if ns else cam, output="screen",
                parameters=[os.path.join(cfg, "video_source.yaml"),
                            # value_type=str: a camera index (sources:=0,2) must reach the node as a string
                            {"source": ParameterValue(src, value_type=str),
                             "frame_id": f"{cam.replace('/', '_')}_optical_frame"}]))
    tracker = LifecycleNode(
        package=PACKAGE, executable="multi_camera_node", name="multi_camera_tracker", namespace=ns,
        output="screen",
        parameters=[value("params_file") or os.path.join(cfg, "multi_camera.yaml"),
                    {"cameras": cameras, "autostart": False}])
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(tracker),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=tracker, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(tracker),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return actions + [tracker, activate, configure]


def generate_launch_description():
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration

    cfg = os.path.join(get_package_share_directory(PACKAGE), "config")
    args = [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()]
    env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(cfg, "fastdds_shm.xml"),
                                 condition=IfCondition(LaunchConfiguration("fastdds_profile")))
    return LaunchDescription(args + [env, OpaqueFunction(function=_nodes)])
