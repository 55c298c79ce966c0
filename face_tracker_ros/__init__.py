"""ROS 2 nodes of face_tracker: they convert messages and call ``face_tracker_core``."""
