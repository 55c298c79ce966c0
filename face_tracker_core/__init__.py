"""face_tracker_core: framework-free face perception (detection, tracking, recognition, training).

Never imports rclpy: everything here runs from plain Python, the CLI, or the ROS nodes in
``face_tracker_ros`` which only convert messages and call into this package.
"""

__version__ = "0.1.0"
