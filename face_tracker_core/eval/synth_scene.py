"""Synthetic multi-face scenes with exact ground truth: actors, occluders, rendering.

Sequences are *made of real pictures*: head cut-outs (:mod:`.synth_faces`) move over a real scene
photo and behind real photo patches used as occluders (a pillar, a panel). Because every head is
placed by the scene, the face box of each person in each frame is known exactly, together with
how much of it is visible (see :mod:`.mot` for how the ground truth is scored). The frame clock
drops frames at random and jitters stamps, so a tracker sees irregular ``dt``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..types import BBox
from .synth_faces import FaceSprite

#: bumped whenever rendering changes pixels, so cached detections of old frames are not reused.
GENERATOR_VERSION = 3

__all__ = ["GENERATOR_VERSION", "Actor", "Occluder", "Scenario", "GroundTruth", "render", "render_gt", "frames"]


@dataclass
class Actor:
    """A person whose face follows piecewise-linear keyframes.

    Attributes:
        sprite: the head to draw.
        keys: ``[(t, cx, cy, size), ...]`` face-box centre (pixels) and face width (pixels) at
            time ``t`` (seconds), ``t`` increasing. Before the first/after the last key the actor
            is absent (so exits are done by moving the face out of the frame).
        depth: drawing order, larger = nearer the camera (drawn on top).
        bob: amplitude (fraction of the face size) of a small natural head bob at ~1.3 Hz.
        depth_change: optional ``(t, depth)``: from time ``t`` on the actor is drawn at ``depth``
            (so two people can swap who is in front between two crossings).
    """

    sprite: FaceSprite
    keys: List[Tuple[float, float, float, float]]
    depth: float = 0.0
    bob: float = 0.02
    depth_change: Optional[Tuple[float, float]] = None

    def depth_at(self, t: float) -> float:
        if self.depth_change is not None and t >= self.depth_change[0]:
            return self.depth_change[1]
        return self.depth

    def state(self, t: float) -> Optional[Tuple[float, float, float]]:
        """``(cx, cy, size)`` at ``t`` or ``None`` when absent."""
        k = self.keys
        if t < k[0][0] or t > k[-1][0]:
            return None
        for (t0, x0, y0, s0), (t1, x1, y1, s1) in zip(k, k[1:]):
            if t0 <= t <= t1:
                a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                cx, cy, s = x0 + a * (x1 - x0), y0 + a * (y1 - y0), s0 + a * (s1 - s0)
                break
        else:
            _, cx, cy, s = k[-1]
        phase = zlib.crc32(self.sprite.identity.encode()) % 100 / 100.0 * 2 * math.pi
        cy += self.bob * s * math.sin(2 * math.pi * 1.3 * t + phase)
        cx += 0.5 * self.bob * s * math.sin(2 * math.pi * 0.7 * t + phase)
        return cx, cy, s


@dataclass
class Occluder:
    """A real photo patch in front of the faces (a pillar, a panel), fixed in the frame.

    Attributes:
        patch: ``(h, w, 3)`` uint8 BGR pixels drawn at ``(x, y)`` (top-left, pixels).
    """

    patch: np.ndarray
    x: int
    y: int


@dataclass
class Scenario:
    """One synthetic sequence: background, people, occluders and a frame clock.

    Attributes:
        name: short name (``crossing``, ``occlusion``...).
        background: ``(height, width, 3)`` uint8 BGR.
        actors: people; their index is their ground-truth id.
        occluders: patches drawn over all faces.
        duration_s: sequence length in seconds.
        fps: nominal frame rate.
        drop_rate: probability that a frame is dropped (the stamps then skip it).
        stamp_jitter_s: std of the capture-time jitter added to each stamp.
        noise: std of the Gaussian sensor noise added to each frame (grey levels).
        seed: random seed of the clock and noise.
        still_ids: ground-truth ids of faces that do not move (for the jitter measurement).
    """

    name: str
    background: np.ndarray
    actors: List[Actor]
    occluders: List[Occluder] = field(default_factory=list)
    duration_s: float = 6.0
    fps: float = 30.0
    drop_rate: float = 0.1
    stamp_jitter_s: float = 0.002
    noise: float = 3.0
    seed: int = 0
    still_ids: Tuple[int, ...] = ()

    @property
    def width(self) -> int:
        return self.background.shape[1]

    @property
    def height(self) -> int:
        return self.background.shape[0]

    def stamps(self) -> np.ndarray:
        """Capture stamps (seconds) of the frames that are delivered (irregular, increasing)."""
        rng = np.random.default_rng(self.seed)
        n = int(round(self.duration_s * self.fps))
        t = np.arange(n) / self.fps
        keep = rng.random(n) >= self.drop_rate
        keep[0] = True
        t = t[keep] + rng.normal(0.0, self.stamp_jitter_s, keep.sum())
        return np.maximum.accumulate(np.maximum(t, 0.0) + np.arange(keep.sum()) * 1e-6)


@dataclass
class GroundTruth:
    """One person in one frame: id, exact face box (pixels) and visible fraction in [0, 1]."""

    gt_id: int
    box: BBox
    visibility: float


def render(scn: Scenario, t: float, rng: Optional[np.random.Generator] = None,
           draw: bool = True) -> Tuple[Optional[np.ndarray], List[GroundTruth]]:
    """Draw the frame at time ``t`` and its ground truth.

    Args:
        scn: the scenario.
        t: time in seconds.
        rng: source of sensor noise (none added when ``None``).
        draw: False = only the ground truth (the frame is returned as ``None``; faster).

    Returns:
        ``(frame, gt)``: ``(H, W, 3)`` uint8 BGR image; people present in the frame, any visibility.
    """
    h, w = scn.height, scn.width
    img = scn.background.astype(np.float32) if draw else None
    owner = np.full((h, w), -1, np.int16)            # topmost opaque thing per pixel
    boxes: Dict[int, BBox] = {}
    order = sorted(range(len(scn.actors)), key=lambda i: scn.actors[i].depth_at(t))
    for i in order:
        act = scn.actors[i]
        st = act.state(t)
        if st is None:
            continue
        cx, cy, size = st
        sp = act.sprite
        s = size / sp.face_width
        fx1, fy1, fx2, fy2 = sp.face
        # crop pixel (u, v) -> frame (s*u + tx, s*v + ty), placing the face centre at (cx, cy).
        tx, ty = cx - s * (fx1 + fx2) / 2, cy - s * (fy1 + fy2) / 2
        box = BBox(s * fx1 + tx, s * fy1 + ty, s * fx2 + tx, s * fy2 + ty)
        ch, cw = sp.image.shape[:2]
        x0, y0 = max(0, int(math.floor(tx))), max(0, int(math.floor(ty)))
        x1, y1 = min(w, int(math.ceil(tx + s * cw))), min(h, int(math.ceil(ty + s * ch)))
        if x1 <= x0 or y1 <= y0:
            boxes[i] = box
            continue
        m = np.array([[s, 0.0, tx - x0], [0.0, s, ty - y0]])
        size_roi = (x1 - x0, y1 - y0)
        alpha = cv2.warpAffine(sp.alpha, m, size_roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if draw:
            face = cv2.warpAffine(sp.image, m, size_roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            roi = img[y0:y1, x0:x1]
            roi += alpha[..., None] * (face.astype(np.float32) - roi)
        owner[y0:y1, x0:x1][alpha > 0.5] = i
        boxes[i] = box
    for occ in scn.occluders:
        ph, pw = occ.patch.shape[:2]
        xa, ya, xb, yb = max(0, occ.x), max(0, occ.y), min(w, occ.x + pw), min(h, occ.y + ph)
        if xb > xa and yb > ya:
            if draw:
                img[ya:yb, xa:xb] = occ.patch[ya - occ.y:yb - occ.y, xa - occ.x:xb - occ.x]
            owner[ya:yb, xa:xb] = -2
    frame = None
    if draw:
        if rng is not None and scn.noise > 0:
            img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(scn.noise)
        img += np.float32(0.5)
        np.clip(img, 0, 255, out=img)
        frame = img.astype(np.uint8)
    gt = []
    for i, box in sorted(boxes.items()):
        area = box.area
        bx1, by1 = max(0, int(round(box.x1))), max(0, int(round(box.y1)))
        bx2, by2 = min(w, int(round(box.x2))), min(h, int(round(box.y2)))
        vis = 0.0
        if bx2 > bx1 and by2 > by1 and area > 0:
            vis = float((owner[by1:by2, bx1:bx2] == i).sum()) / area
        gt.append(GroundTruth(i, box, min(1.0, vis)))
    return frame, gt


def render_gt(scn: Scenario, t: float) -> List[GroundTruth]:
    """Ground truth at time ``t`` without drawing the frame."""
    return render(scn, t, draw=False)[1]


def frames(scn: Scenario) -> Iterator[Tuple[float, np.ndarray, List[GroundTruth]]]:
    """Yield ``(stamp_s, frame, ground_truth)`` for every delivered frame of ``scn``."""
    rng = np.random.default_rng(scn.seed + 7)
    for t in scn.stamps():
        frame, gt = render(scn, float(t), rng)
        yield float(t), frame, gt
