"""Landmark sketches and the geometry that places a driving face onto the target (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from face_tracker_core.reenact.sketch import (PARTS, RelativeMotion, align_to_reference, apply_affine, crop_frame,
                                              crop_matrix, render_sketch, similarity_transform)


def _face(seed: int = 0) -> np.ndarray:
    """A plausible 68-point face: the iBUG layout on a rough oval, jittered."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([100 + 40 * np.cos(t), 120 + 50 * np.sin(t)], 1)
    return (pts + rng.normal(0, 2, pts.shape)).astype(np.float32)


def test_sketch_draws_every_part_in_its_colour():
    lm = _face()
    img = render_sketch(lm, 256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert img[:5].max() == 0, "nothing drawn far from the landmarks"
    colours = {tuple(int(c) for c in px) for px in img.reshape(-1, 3)}
    for name, (_a, _b, _closed, colour) in PARTS.items():
        assert colour in colours, f"{name} colour {colour} missing"


def test_sketch_rejects_bad_landmarks():
    with pytest.raises(ValueError):
        render_sketch(np.zeros((5, 2)), 64)
    bad = _face()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError):
        render_sketch(bad, 64)


def test_similarity_transform_recovers_a_known_pose():
    src = _face()
    ang, s, t = np.deg2rad(17), 1.7, np.array([12.0, -30.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ (s * rot).T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * rot, atol=1e-6)
    np.testing.assert_allclose(apply_affine(m, src), dst, atol=1e-3)


def test_alignment_removes_pose_and_size_but_keeps_the_mouth():
    ref = _face(1)
    driver = ref.copy()
    driver[48:68, 1] += 6.0  # open mouth: expression that must survive
    ang = np.deg2rad(-25)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    moved = driver @ (0.6 * rot).T + np.array([300.0, 40.0])  # another camera / distance / roll
    aligned = align_to_reference(moved, ref)
    np.testing.assert_allclose(aligned[:48], driver[:48], atol=1e-3)
    np.testing.assert_allclose(aligned[48:] - ref[48:], [[0, 6]] * 20, atol=1e-3)


def test_relative_motion_keeps_the_target_shape():
    ref = _face(2)
    other = _face(3) * 1.3  # a differently shaped driver
    rel = RelativeMotion(ref)
    for _ in range(5):
        out = rel(other)
    np.testing.assert_allclose(out, ref, atol=1e-3)  # neutral driver -> target's own shape
    talking = other.copy()
    talking[60:68, 1] += 5
    out = rel(talking)
    assert out[60:68, 1].mean() > ref[60:68, 1].mean() + 1.0


def test_crop_outside_the_frame_is_padded_and_consistent_with_crop_matrix():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[50, 150] = 255
    crop = (120, -20, 80)  # top rows outside the frame
    out = crop_frame(frame, crop, 40)
    assert out.shape == (40, 40, 3)
    x, y = apply_affine(crop_matrix(crop, 40), np.array([[150.5, 50.5]]))[0]
    yy, xx = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    assert abs(xx + 0.5 - x) <= 1 and abs(yy + 0.5 - y) <= 1
