"""Video source node: publishes ``image`` (sensor_msgs/Image) and ``camera_info`` from a V4L2/USB
camera, a video file, or (default) an embedded synthetic camera, so the package runs with no
camera at all.
"""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from face_tracker_core.errors import FaceTrackerError
from face_tracker_core.sources import open_source

from .conversions import bgr_to_image
from .params import declare, image_qos
from .spin import run_node

ENCODINGS = ("bgr8", "rgb8", "mono8", "bgra8", "rgba8", "yuv422", "yuv422_yuy2")


class VideoSourceNode(Node):
    """Publishes frames at ``fps`` from ``source``; ``frame_id`` follows REP-103 (optical frame)."""

    def __init__(self, node_name: str = "video_source", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.p_source = declare(self, "source", "synthetic",
                                "'synthetic' (embedded moving photo), a device (/dev/video0 or 0) or a video file",
                                read_only=True)
        self.p_width = declare(self, "width", 640, "frame width, pixels (camera request / synthetic size)",
                               range=(16, 7680), step=1, read_only=True)
        self.p_height = declare(self, "height", 480, "frame height, pixels", range=(16, 4320), step=1,
                                read_only=True)
        self.p_fps = declare(self, "fps", 30.0, "publish rate, Hz", range=(0.1, 240.0), read_only=True)
        self.p_loop = declare(self, "loop", True, "restart a video file at its end", read_only=True)
        self.p_frames = declare(self, "num_frames", 0, "stop after this many frames (0 = endless)",
                                range=(0, 100000000), step=1, read_only=True)
        self.p_frame_id = declare(self, "frame_id", "camera_optical_frame",
                                  "header.frame_id (REP-103 optical frame: z forward, x right, y down)")
        self.p_encoding = declare(self, "encoding", "bgr8", "published image encoding", choices=ENCODINGS)
        self.p_reliable = declare(self, "reliable", False,
                                  "publish with reliable QoS (default best effort, like camera drivers)",
                                  read_only=True)
        try:
            self.source = open_source(self.p_source, self.p_width, self.p_height, self.p_fps,
                                      num_frames=self.p_frames, loop=self.p_loop)
        except FaceTrackerError as exc:
            self.get_logger().fatal(str(exc))
            raise
        qos = image_qos(self.p_reliable, 1)
        self.pub = self.create_publisher(Image, "image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self.count = 0
        self.finished = False
        self.timer = self.create_timer(1.0 / self.p_fps, self._tick)
        self.get_logger().info(
            f"publishing '{self.pub.topic_name}' from {self.p_source} at {self.p_fps:.1f} Hz "
            f"({self.source.width}x{self.source.height}, {self.p_encoding})")

    def camera_info(self, header) -> CameraInfo:
        """A pinhole model guess (about 60 degrees horizontal field of view); calibrate for real use."""
        w, h = self.source.width, self.source.height
        f = w / 1.15
        info = CameraInfo()
        info.header = header
        info.width, info.height = w, h
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, w / 2, 0.0, 0.0, f, h / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def _tick(self) -> None:
        if self.finished:
            return
        frame = self.source.read()
        if frame is None:
            self.finished = True
            self.timer.cancel()
            self.get_logger().info(f"source ended after {self.count} frames")
            return
        header = Image().header
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = self.p_frame_id
        msg = bgr_to_image(frame, header, self.p_encoding)
        self.pub.publish(msg)
        self.info_pub.publish(self.camera_info(header))
        self.count += 1

    def destroy_node(self):
        source = getattr(self, "source", None)  # absent when the source failed to open
        if source is not None:
            source.close()
        return super().destroy_node()


def main(args=None) -> None:
    run_node(VideoSourceNode, args)


if __name__ == "__main__":
    main()
