"""face_tracker_core.geometry3d: pinhole back-projection, depth medians, smoothing (no ROS)."""

import math

import numpy as np
import pytest

from face_tracker_core.geometry3d import (Face3D, PinholeCamera, PositionSmoother, central_box, depth_to_metres,
                                          distance_from_width, face_depth, locate)
from face_tracker_core.types import BBox, Detection, Track

CAM = PinholeCamera.from_k([500.0, 0, 320.0, 0, 520.0, 240.0, 0, 0, 1], 640, 480)


def test_from_k_reads_row_major_k_and_refuses_uncalibrated():
    assert (CAM.fx, CAM.fy, CAM.cx, CAM.cy, CAM.width, CAM.height) == (500.0, 520.0, 320.0, 240.0, 640, 480)
    with pytest.raises(ValueError, match="focal"):
        PinholeCamera.from_k([0.0] * 9, 640, 480)
    with pytest.raises(ValueError, match="size"):
        PinholeCamera.from_k([500.0, 0, 320, 0, 500, 240, 0, 0, 1], 0, 480)
    with pytest.raises(ValueError, match="9 values"):
        PinholeCamera.from_k([1.0] * 4, 640, 480)


def test_scaled_to_follows_a_resized_image():
    half = CAM.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 260.0, 160.0, 120.0)
    assert CAM.scaled_to(640, 480) is CAM


@pytest.mark.parametrize("z", [0.8, 1.5, 3.0])
def test_size_estimate_inverts_the_projection(z):
    w_px = CAM.fx * 0.16 / z
    assert distance_from_width(w_px, CAM.fx, 0.16) == pytest.approx(z)
    # a face 0.3 m right of and 0.1 m below the optical axis
    u, v = CAM.cx + CAM.fx * 0.3 / z, CAM.cy + CAM.fy * 0.1 / z
    box = BBox.from_cxcywh(u, v, w_px, 1.2 * w_px)
    (face,) = locate([Track("7", box, 0.9)], CAM, 0.16)
    assert face.track_id == "7" and face.source == "size" and face.score == pytest.approx(0.9)
    assert face.position == pytest.approx((0.3, 0.1, z))   # REP-103 optical: x right, y down, z forward
    assert face.size[0] == pytest.approx(0.16) and face.size[1] == pytest.approx(1.2 * w_px * z / CAM.fy)


def test_distance_refuses_non_positive_values():
    for args in ((0.0, 500.0, 0.16), (10.0, 0.0, 0.16), (10.0, 500.0, 0.0)):
        with pytest.raises(ValueError):
            distance_from_width(*args)


def test_depth_median_uses_the_central_part_and_ignores_holes():
    depth = np.full((480, 640), 4.0, np.float32)           # background
    depth[200:300, 300:380] = 1.5                           # the face
    depth[230:240, 320:330] = 0.0                           # a hole
    depth[250:255, 330:340] = np.nan
    box = BBox(250, 150, 430, 350)                          # loose box: mostly background
    assert face_depth(depth, box, 0.5) == pytest.approx(1.5)
    assert face_depth(depth, box, 1.0) == pytest.approx(4.0)  # the whole box: the background wins
    assert central_box(box, 0.5).as_xyxy() == pytest.approx((295, 200, 385, 300))


def test_depth_none_without_enough_valid_pixels_or_outside():
    depth = np.zeros((100, 100), np.float32)
    assert face_depth(depth, BBox(10, 10, 60, 60)) is None
    depth[30:32, 30:32] = 2.0                               # 4 of 625 pixels: too few
    assert face_depth(depth, BBox(10, 10, 60, 60)) is None
    assert face_depth(np.ones((100, 100), np.float32), BBox(200, 200, 260, 260)) is None


def test_depth_to_metres_scales_integers_only():
    mm = np.array([[0, 1500]], np.uint16)
    assert depth_to_metres(mm, 0.001)[0].tolist() == pytest.approx([0.0, 1.5])
    m = np.array([[2.5, np.nan]], np.float32)
    out = depth_to_metres(m, 0.001)
    assert out[0, 0] == pytest.approx(2.5) and math.isnan(out[0, 1])


def test_locate_prefers_depth_and_falls_back_to_size():
    depth = np.zeros((480, 640), np.float32)
    depth[100:200, 100:200] = 2.0
    near = Detection(BBox(100, 100, 200, 200), 0.8)          # depth available
    far = Track("3", BBox(400, 300, 450, 360), 0.7)          # no depth there -> size
    a, b = locate([near, far], CAM, 0.16, depth)
    assert (a.source, a.track_id) == ("depth", "") and a.position[2] == pytest.approx(2.0)
    assert b.source == "size" and b.position[2] == pytest.approx(500 * 0.16 / 50)
    assert isinstance(a, Face3D)
    assert locate([Track("z", BBox(5, 5, 5, 9), 0.5)], CAM) == []   # a zero-width box is skipped


def test_smoother_converges_by_time_constant_and_forgets_ended_tracks():
    s = PositionSmoother(tau_s=0.2)
    assert s.update("1", (0.0, 0.0, 1.0), 10.0) == (0.0, 0.0, 1.0)      # first measurement as is
    z = s.update("1", (0.0, 0.0, 2.0), 10.2)[2]
    assert z == pytest.approx(1.0 + (1 - math.exp(-1.0)))               # one time constant
    for k in range(1, 20):
        z = s.update("1", (0.0, 0.0, 2.0), 10.2 + 0.1 * k)[2]
    assert z == pytest.approx(2.0, abs=1e-3)
    s.update("2", (1.0, 1.0, 1.0), 12.0)
    assert s.retain(["2"]) == ["1"] and s.ids == ["2"]
    assert PositionSmoother(0.0).update("x", (1.0, 2.0, 3.0), 0.0) == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        PositionSmoother(-1.0)
