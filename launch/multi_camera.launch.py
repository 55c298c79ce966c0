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

from face_tracker_ros.launch_common import PACKAGE, autostart, config_dir, launch_description, video_source

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
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode

    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    cameras = split_list(value("cameras"))
    pairs = camera_sources(cameras, split_list(value("sources")))
    ns = value("namespace")
    actions = []
    if value("start_source").lower() in ("true", "1", "yes"):
        for cam, src in pairs:
            actions.append(video_source(src, namespace=f"{ns}/{cam}" if ns else cam,
                                        frame_id=f"{cam.replace('/', '_')}_optical_frame"))
    tracker = LifecycleNode(
        package=PACKAGE, executable="multi_camera_node", name="multi_camera_tracker", namespace=ns,
        output="screen",
        parameters=[value("params_file") or os.path.join(config_dir(), "multi_camera.yaml"),
                    {"cameras": cameras, "autostart": False}])
    return actions + [tracker, *autostart(tracker)]


def generate_launch_description():
    from launch.actions import OpaqueFunction

    return launch_description(ARGUMENTS, [OpaqueFunction(function=_nodes)])
