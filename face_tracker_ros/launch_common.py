"""Building blocks of the package's launch files (``launch/*.launch.py``).

The launch files import this module at load time, and the tests load them without ``launch``
installed, so ``launch`` / ``launch_ros`` are imported inside the functions only.
"""

import os

PACKAGE = "face_tracker_ros"


def config_dir() -> str:
    """The installed package's ``config/`` folder (params YAML, rviz config, Fast DDS profile)."""
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory(PACKAGE), "config")


def launch_description(arguments, actions):
    """The launch arguments declared from ``arguments``, the Fast DDS profile, then ``actions``.

    Args:
        arguments: ``{name: (default value, description)}``, the launch file's ``ARGUMENTS``; must
            hold ``fastdds_profile`` (true: ``FASTDDS_DEFAULT_PROFILES_FILE`` is set to the package's
            shared-memory profile, for large images).
        actions: what the launch file starts, in order.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration

    args = [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in arguments.items()]
    env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(config_dir(), "fastdds_shm.xml"),
                                 condition=IfCondition(LaunchConfiguration("fastdds_profile")))
    return LaunchDescription(args + [env, *actions])


def params_file_or(default_yaml: str):
    """The ``params_file`` launch argument, or ``config/<default_yaml>`` when it is empty."""
    from launch.substitutions import LaunchConfiguration, PythonExpression

    return PythonExpression(["'", LaunchConfiguration("params_file"), "' or '",
                             os.path.join(config_dir(), default_yaml), "'"])


def video_source(source, namespace=None, frame_id=None, remappings=None, condition=None):
    """A ``video_source_node`` with the package's ``config/video_source.yaml``.

    Args:
        source: the ``source`` parameter (synthetic | /dev/videoN | N | video file), a string or a
            substitution; always passed as a string, so that a camera index stays one.
        namespace, remappings, condition: as for ``launch_ros.actions.Node``.
        frame_id: the camera's optical frame; None keeps the YAML's.
    """
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    # value_type=str: source:=0 (a camera index) would otherwise reach the node as an int
    overrides = {"source": ParameterValue(source, value_type=str)}
    if frame_id is not None:
        overrides["frame_id"] = frame_id
    return Node(package=PACKAGE, executable="video_source_node", name="video_source", namespace=namespace,
                output="screen", parameters=[os.path.join(config_dir(), "video_source.yaml"), overrides],
                remappings=remappings, condition=condition)


def camera_source():
    """The optional camera of the one-camera launch files: ``video_source_node`` publishing on the
    ``image`` launch argument (and ``camera_info`` beside it), started when ``start_source`` is true,
    reading the ``source`` launch argument."""
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration, PythonExpression

    image = LaunchConfiguration("image")
    # camera_info beside the image topic: /camera/image_raw -> /camera/camera_info
    camera_info = PythonExpression(["'/'.join('", image, "'.split('/')[:-1] + ['camera_info'])"])
    return video_source(LaunchConfiguration("source"), remappings=[("image", image), ("camera_info", camera_info)],
                        condition=IfCondition(LaunchConfiguration("start_source")))


def autostart(node):
    """The actions that walk lifecycle ``node`` to *active*: ``[activate once inactive, configure]``."""
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    activate = RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, goal_state="inactive",
                                                      entities=[change(Transition.TRANSITION_ACTIVATE)]))
    return [activate, change(Transition.TRANSITION_CONFIGURE)]
