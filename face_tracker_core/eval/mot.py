"""Synthetic multi-face sequences with exact ground truth, and MOT metrics for the tracker.

Sequences are *made of real pictures*: head cut-outs of real CelebA photos
(``../shared/data/identity/celeba``, cropped around the box the Haar detector finds, with a soft
elliptical edge) move over real scene photos (``../shared/data/detection/noface``) and behind real
photo patches used as occluders (a pillar, a panel). Because we place every head ourselves, the
face box of each person in each frame is known exactly, together with how much of it is visible.

Scenarios (:func:`benchmark_scenarios`) cover what breaks trackers: two faces crossing (one in front
of the other), faces walking behind an occluder for a few frames, faces leaving the view and
coming back, a face approaching and receding (scale x4), a crowd of 10, and a still face (for box
jitter). The frame clock drops frames at random and jitters stamps, so the tracker sees irregular
``dt``; :func:`perturb_detections` then removes detections at random and adds box noise to what a
real detector found, to simulate a worse detector.

Ground-truth conventions (used by :func:`evaluate`):

* boxes are the *detector's own* face box convention (the Haar box found on the source photo,
  mapped through the exact scale/translation of the frame), corner format, pixels;
* a person counts in a frame when at least ``min_visibility`` (default 0.5) of its face box is
  visible (inside the frame and not covered by a face or occluder in front); less visible
  boxes are *ignored* (not a miss when not tracked; a hypothesis on them is not a false positive),
  as in the MOTChallenge evaluation;
* a hypothesis matches a person at IoU >= 0.5.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import zlib
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError
from ..types import BBox, Detection, Track

log = logging.getLogger(__name__)

#: bumped whenever rendering changes pixels, so cached detections of old frames are not reused.
GENERATOR_VERSION = 3


# ------------------------------------------------------------------------------------------------
# Real face cut-outs and backgrounds
# ------------------------------------------------------------------------------------------------
@dataclass
class FaceSprite:
    """A head cut from a real photo.

    Attributes:
        image: ``(h, w, 3)`` uint8 BGR crop (face plus hair/neck margin).
        alpha: ``(h, w)`` float32 opacity in [0, 1] (soft ellipse around the head).
        face: ``(x1, y1, x2, y2)`` face box inside ``image``, pixels (the detector's box).
        identity: person id (CelebA identity folder name).
        path: source photo.
    """

    image: np.ndarray
    alpha: np.ndarray
    face: Tuple[float, float, float, float]
    identity: str
    path: str

    @property
    def face_width(self) -> float:
        return self.face[2] - self.face[0]


def _cut_sprite(bgr: np.ndarray, box: BBox, identity: str, path: str) -> Optional[FaceSprite]:
    """Head crop around ``box`` (None when the margin would leave the photo)."""
    fw, fh = box.width, box.height
    cx = (box.x1 + box.x2) / 2
    x1, x2 = cx - 0.9 * fw, cx + 0.9 * fw
    y1, y2 = box.y1 - 0.6 * fh, box.y2 + 0.5 * fh
    h, w = bgr.shape[:2]
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        return None
    ix1, iy1, ix2, iy2 = int(math.floor(x1)), int(math.floor(y1)), int(math.ceil(x2)), int(math.ceil(y2))
    crop = np.ascontiguousarray(bgr[iy1:iy2, ix1:ix2])
    ch, cw = crop.shape[:2]
    alpha = np.zeros((ch, cw), np.float32)
    # Ellipse inscribed in the crop, feathered so the head blends into the new background.
    cv2.ellipse(alpha, (cw // 2, ch // 2), (int(cw * 0.47), int(ch * 0.48)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.06 * fw))
    face = (box.x1 - ix1, box.y1 - iy1, box.x2 - ix1, box.y2 - iy1)
    return FaceSprite(crop, alpha, face, identity, path)


def _calibrate(sprite: FaceSprite, detector, min_score: float,
               sizes: Sequence[float] = (70.0, 110.0)) -> Optional[FaceSprite]:
    """Re-measure the sprite's face box with ``detector`` on the cut-out itself.

    A detector's box on the full source photo and on the cut-out (soft edge, new surroundings,
    new scale) can differ by 20-40 % in size, which alone would push IoU with the ground truth
    near the 0.5 match threshold. So the head is drawn on a plain grey canvas at typical face
    widths, detected, and the boxes mapped back (averaged) become the sprite's face box. ``None``
    when the detector does not find the head at every size.
    """
    fx1, fy1, fx2, fy2 = sprite.face
    found = []
    for size in sizes:
        s = size / (fx2 - fx1)
        ch, cw = sprite.image.shape[:2]
        pad = int(0.5 * max(cw, ch) * s)
        W, H = int(cw * s) + 2 * pad, int(ch * s) + 2 * pad
        m = np.array([[s, 0.0, pad], [0.0, s, pad]])
        face = cv2.warpAffine(sprite.image, m, (W, H), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(sprite.alpha, m, (W, H))[..., None]
        canvas = (alpha * face + (1 - alpha) * 128.0).astype(np.uint8)
        expect = np.array([[fx1 * s + pad, fy1 * s + pad, fx2 * s + pad, fy2 * s + pad]])
        dets = [d for d in detector.detect(canvas) if d.score >= min_score]
        if not dets:
            return None
        from ..infer.tracker import iou_matrix
        iou = iou_matrix(expect, np.array([d.box.as_xyxy() for d in dets]))[0]
        if iou.max() < 0.3:
            return None
        b = np.array(dets[int(iou.argmax())].box.as_xyxy())
        found.append((b - pad) / s)
    x1, y1, x2, y2 = np.mean(found, axis=0).tolist()
    return FaceSprite(sprite.image, sprite.alpha, (x1, y1, x2, y2), sprite.identity, sprite.path)


def _sprite_from(path: str, person: str, detector, min_face: int, min_score: float) -> Optional[FaceSprite]:
    """The head of ``path`` when the detector finds exactly one face there (see :func:`load_face_sprites`)."""
    bgr = cv2.imread(path)
    if bgr is None:
        log.warning("%s: unreadable image, skipped", path)
        return None
    # weak boxes (a detector run with a low threshold for ByteTrack) do not count
    dets = [d for d in detector.detect(bgr) if d.score >= min_score]
    if len(dets) != 1 or dets[0].box.width < min_face:
        return None
    sprite = _cut_sprite(bgr, dets[0].box, person, path)
    return _calibrate(sprite, detector, min_score) if sprite is not None else None


def load_face_sprites(data_root: str, count: int, seed: int = 0, min_face: int = 70,
                      detector=None, min_score: float = 0.5) -> List[FaceSprite]:
    """Cut ``count`` heads of *different* people from ``identity/celeba``.

    A photo is used when the detector finds exactly one face there with score >= ``min_score``
    (weaker boxes are not counted), at least ``min_face`` pixels wide, and the head margin fits in
    the photo. People are visited in a seeded random order, one photo each: first up to 3 photos
    per person, then (if heads are still missing) the other photos of the people left.

    The ground-truth face box of a head is the detector's own box on the cut-out (measured on a
    plain canvas at two sizes, see :func:`_calibrate`), carried through the exact scale and shift
    of every frame. So pass the detector being benchmarked: then ground truth and detections share
    one box convention (tight or loose, square or not), and IoU measures tracking, not a
    convention mismatch.

    Args:
        data_root: the shared data folder (holding ``identity/celeba``).
        count: heads wanted.
        seed: order of people/photos.
        min_face: smallest accepted face width in the photo, pixels.
        detector: a :class:`~face_tracker_core.infer.base.FaceDetector`; default Haar.
        min_score: smallest accepted detection score.

    Raises:
        DataError: the folder is missing or holds too few usable photos.
    """
    root = os.path.join(data_root, "identity", "celeba")
    people = sorted(p for p in os.listdir(root) if os.path.isdir(os.path.join(root, p))) if os.path.isdir(root) else []
    if not people:
        raise DataError(f"{root}: no identity folders (see ../shared/data/README.md)")
    if detector is None:
        from ..infer.base import make_detector
        detector = make_detector("haar")
    rng = np.random.default_rng(seed)
    order = [(person, list(rng.permutation(sorted(glob.glob(os.path.join(root, person, "*.jpg"))))))
             for person in rng.permutation(people)]
    out: List[FaceSprite] = []
    used = set()
    # First pass: up to 3 photos per person. Most in-the-wild photos leave no room for the head
    # margin, and how many do depends on the detector's box size, so a second pass tries the
    # remaining photos of the people still without a head (the first pass alone stays as it was).
    for first in (True, False):
        for person, photos in order:
            if person in used:
                continue
            for p in (photos[:3] if first else photos[3:]):
                sprite = _sprite_from(str(p), str(person), detector, min_face, min_score)
                if sprite is not None:
                    out.append(sprite)
                    used.add(person)
                    break
            if len(out) == count:
                return out
    raise DataError(f"{root}: only {len(out)} usable face photos found, {count} needed")


def load_backgrounds(data_root: str, count: int, seed: int = 0) -> List[np.ndarray]:
    """``count`` scene photos without people from ``detection/noface`` (BGR uint8)."""
    folder = os.path.join(data_root, "detection", "noface")
    paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    if len(paths) < count:
        raise DataError(f"{folder}: {len(paths)} photos found, {count} needed")
    rng = np.random.default_rng(seed + 1)
    out = []
    for p in rng.permutation(paths)[:count]:
        img = cv2.imread(str(p))
        if img is None:
            raise DataError(f"{p}: unreadable image")
        out.append(img)
    return out


def _fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize + centre-crop ``img`` to exactly ``width`` x ``height``."""
    h, w = img.shape[:2]
    s = max(width / w, height / h)
    r = cv2.resize(img, (max(width, int(round(w * s))), max(height, int(round(h * s)))), interpolation=cv2.INTER_AREA)
    y0, x0 = (r.shape[0] - height) // 2, (r.shape[1] - width) // 2
    return np.ascontiguousarray(r[y0:y0 + height, x0:x0 + width])


# ------------------------------------------------------------------------------------------------
# Scene description
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# Scenario library
# ------------------------------------------------------------------------------------------------
SCENARIOS = ("crossing", "occlusion", "exit_reentry", "scale", "crowd", "still")


def _patch(src: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A ``w`` x ``h`` patch of a real photo, with a dark outline so it reads as an object."""
    big = _fit(src, max(w, 64) * 2, max(h, 64) * 2) if (src.shape[1] < w or src.shape[0] < h) else src
    y0 = int(rng.integers(0, big.shape[0] - h + 1))
    x0 = int(rng.integers(0, big.shape[1] - w + 1))
    p = big[y0:y0 + h, x0:x0 + w].copy()
    cv2.rectangle(p, (0, 0), (w - 1, h - 1), (20, 20, 20), 2)
    return p


def make_scenario(name: str, sprites: Sequence[FaceSprite], backgrounds: Sequence[np.ndarray],
                  width: int = 640, height: int = 480, seed: int = 0, duration_s: Optional[float] = None,
                  drop_rate: float = 0.1) -> Scenario:
    """Build one of :data:`SCENARIOS` (positions scale with ``width`` x ``height``).

    Args:
        name: scenario name.
        sprites: heads to use (``crowd`` needs 10, ``crossing``/``exit_reentry`` 3, others 2).
        backgrounds: at least 2 scene photos (the second gives the occluder patches).
        width: frame width, pixels.
        height: frame height, pixels.
        seed: random seed (crowd motion, frame drops, noise).
        duration_s: override the scenario's length.
        drop_rate: fraction of frames dropped by the clock.

    Raises:
        ValueError: unknown name or too few sprites.
    """
    W, H = float(width), float(height)
    u = min(W / 640.0, H / 480.0)         # face sizes scale with the frame
    rng = np.random.default_rng(seed + 1000)
    bg = _fit(backgrounds[0], width, height)
    need = {"crowd": 10, "crossing": 3, "exit_reentry": 3}.get(name, 2)
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})")
    if len(sprites) < need:
        raise ValueError(f"scenario '{name}' needs {need} face sprites, got {len(sprites)}")
    sp = list(sprites)
    occ: List[Occluder] = []
    still: Tuple[int, ...] = ()
    if name == "crossing":
        dur = 6.0
        actors = [
            # A (front) and B cross twice: first A in front, then B in front (depth swap).
            Actor(sp[0], [(0, 0.15 * W, 0.45 * H, 90 * u), (2.8, 0.85 * W, 0.5 * H, 90 * u),
                          (5.8, 0.15 * W, 0.42 * H, 85 * u)], depth=1.0),
            Actor(sp[1], [(0, 0.85 * W, 0.5 * H, 80 * u), (2.8, 0.15 * W, 0.45 * H, 80 * u),
                          (5.8, 0.85 * W, 0.5 * H, 95 * u)], depth=0.5, depth_change=(2.8, 1.5)),
            Actor(sp[2], [(0, 0.5 * W, 0.2 * H, 70 * u), (5.9, 0.55 * W, 0.22 * H, 70 * u)], depth=0.2),
        ]
    elif name == "occlusion":
        dur = 6.0
        pw = int(70 * u)
        # a pillar in the middle of the view and a panel at the lower left, both real photo patches
        occ = [Occluder(_patch(backgrounds[1], pw, int(H), rng), int(0.5 * W - pw / 2), 0),
               Occluder(_patch(backgrounds[1], int(0.25 * W), int(0.3 * H), rng), int(0.06 * W), int(0.62 * H))]
        actors = [
            # A walks behind the pillar (hidden ~0.3 s) twice, at ~230 px/s.
            Actor(sp[0], [(0, 0.1 * W, 0.3 * H, 75 * u), (2.2, 0.9 * W, 0.32 * H, 75 * u),
                          (5.5, 0.15 * W, 0.28 * H, 75 * u)]),
            # B crosses behind the pillar, then ducks behind the panel (~0.5 s) and comes back up.
            Actor(sp[1], [(0.3, 0.9 * W, 0.55 * H, 85 * u), (2.6, 0.35 * W, 0.54 * H, 85 * u),
                          (3.4, 0.2 * W, 0.54 * H, 85 * u), (3.7, 0.18 * W, 0.8 * H, 85 * u),
                          (4.0, 0.22 * W, 0.56 * H, 85 * u), (6.0, 0.42 * W, 0.5 * H, 85 * u)]),
        ]
    elif name == "exit_reentry":
        dur = 7.0
        actors = [
            # leaves on the left, away 1.5 s (longer than max_age_s), comes back on the left.
            Actor(sp[0], [(0, 0.3 * W, 0.4 * H, 85 * u), (1.5, -0.15 * W, 0.42 * H, 85 * u),
                          (3.0, -0.15 * W, 0.42 * H, 85 * u), (4.5, 0.3 * W, 0.45 * H, 85 * u),
                          (7.0, 0.35 * W, 0.4 * H, 85 * u)]),
            # a short exit (0.5 s) on the right.
            Actor(sp[1], [(0, 0.7 * W, 0.5 * H, 80 * u), (1.2, 1.12 * W, 0.5 * H, 80 * u),
                          (1.7, 1.12 * W, 0.5 * H, 80 * u), (2.9, 0.75 * W, 0.55 * H, 80 * u),
                          (7.0, 0.7 * W, 0.5 * H, 80 * u)]),
            # walks in from the bottom later.
            Actor(sp[2], [(2.0, 0.55 * W, 1.15 * H, 75 * u), (3.5, 0.55 * W, 0.75 * H, 75 * u),
                          (7.0, 0.5 * W, 0.7 * H, 75 * u)]),
        ]
    elif name == "scale":
        dur = 6.0
        actors = [
            Actor(sp[0], [(0, 0.4 * W, 0.5 * H, 50 * u), (2.5, 0.45 * W, 0.55 * H, 200 * u),
                          (5.0, 0.35 * W, 0.45 * H, 55 * u), (6.0, 0.3 * W, 0.45 * H, 70 * u)], depth=1.0),
            Actor(sp[1], [(0, 0.85 * W, 0.2 * H, 60 * u), (3.0, 0.75 * W, 0.7 * H, 120 * u),
                          (6.0, 0.85 * W, 0.25 * H, 60 * u)], depth=0.5),
        ]
    elif name == "crowd":
        dur = 6.0
        actors = []
        for i in range(10):
            size = float(rng.uniform(55, 80)) * u
            # start on a jittered 5 x 2 grid so the crowd fills the frame before it mixes
            x = (0.1 + 0.2 * (i % 5)) * W + rng.uniform(-0.04, 0.04) * W
            y = (0.3 + 0.4 * (i // 5)) * H + rng.uniform(-0.08, 0.08) * H
            ang = rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(20, 70) * u
            vx, vy = speed * math.cos(ang), speed * math.sin(ang)
            keys = []
            t = 0.0
            while t <= dur + 1e-9:
                keys.append((t, x, y, size))
                # bounce off the borders so everyone stays in view
                x, y = x + vx * 0.5, y + vy * 0.5
                if not 0.08 * W < x < 0.92 * W:
                    vx, x = -vx, min(max(x, 0.08 * W), 0.92 * W)
                if not 0.12 * H < y < 0.88 * H:
                    vy, y = -vy, min(max(y, 0.12 * H), 0.88 * H)
                t += 0.5
            actors.append(Actor(sp[i], keys, depth=float(rng.uniform())))
    else:  # still
        dur = 5.0
        actors = [
            Actor(sp[0], [(0, 0.35 * W, 0.45 * H, 100 * u), (dur, 0.35 * W, 0.45 * H, 100 * u)], bob=0.0),
            Actor(sp[1], [(0, 0.9 * W, 0.3 * H, 70 * u), (2.5, 0.65 * W, 0.75 * H, 70 * u),
                          (5.0, 0.9 * W, 0.3 * H, 70 * u)]),
        ]
        still = (0,)
    return Scenario(name=name, background=bg, actors=actors, occluders=occ,
                    duration_s=duration_s or dur, drop_rate=drop_rate, seed=seed, still_ids=still)


def benchmark_scenarios(data_root: str, seed: int = 0, width: int = 640, height: int = 480,
                        names: Sequence[str] = SCENARIOS, detector=None) -> List[Scenario]:
    """The benchmark's scenarios with different people and backgrounds each (deterministic)."""
    need = {"crowd": 10, "crossing": 3, "exit_reentry": 3}
    total = sum(need.get(n, 2) for n in names)
    sprites = load_face_sprites(data_root, total, seed=seed, detector=detector)
    bgs = load_backgrounds(data_root, 2 * len(names), seed=seed)
    out, k = [], 0
    for i, n in enumerate(names):
        c = need.get(n, 2)
        out.append(make_scenario(n, sprites[k:k + c], bgs[2 * i:2 * i + 2], width, height, seed=seed + i))
        k += c
    return out


# ------------------------------------------------------------------------------------------------
# Simulated detector degradation
# ------------------------------------------------------------------------------------------------
def perturb_detections(dets: Sequence[Detection], rng: np.random.Generator, miss_rate: float = 0.1,
                       box_noise: float = 0.03) -> List[Detection]:
    """Drop detections at random and jitter the rest (simulates a weaker detector).

    Args:
        dets: detections of one frame.
        rng: random source.
        miss_rate: probability that a detection is removed.
        box_noise: std of the centre and size noise as a fraction of the box size.
    """
    out = []
    for d in dets:
        if rng.random() < miss_rate:
            continue
        b = d.box
        cx, cy = b.center
        bw, bh = b.width, b.height
        n = rng.normal(0.0, box_noise, 4)
        cx, cy = cx + n[0] * bw, cy + n[1] * bh
        bw, bh = bw * (1 + n[2]), bh * (1 + n[3])
        out.append(Detection(BBox.from_cxcywh(cx, cy, max(bw, 1.0), max(bh, 1.0)), d.score, d.label, d.landmarks))
    return out


def oracle_detections(gt: Sequence[GroundTruth], min_visibility: float = 0.6, score: float = 0.95) -> List[Detection]:
    """Perfect detections from the ground truth: the exact box of every person at least
    ``min_visibility`` visible (an ideal detector, to measure the tracker alone)."""
    return [Detection(g.box, score) for g in gt if g.visibility >= min_visibility]


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from ..infer.tracker import iou_matrix
    return iou_matrix(a, b)


class MotEvaluator:
    """Accumulates one sequence for :mod:`motmetrics` (ignoring barely visible people).

    Args:
        min_visibility: people less visible than this are ignored (see the module docstring).
        iou: IoU needed for a hypothesis to match a person.
    """

    def __init__(self, min_visibility: float = 0.5, iou: float = 0.5) -> None:
        import motmetrics as mm

        self.acc = mm.MOTAccumulator(auto_id=True)
        self.min_visibility = min_visibility
        self.iou = iou
        self._ids: Dict[str, int] = {}
        self.ignored_hyps = 0

    def _hid(self, track_id: str) -> int:
        # motmetrics wants numeric hypothesis ids; keep a stable mapping of our string ids.
        return self._ids.setdefault(track_id, len(self._ids) + 1)

    def update(self, gt: Sequence[GroundTruth], tracks: Sequence[Track]) -> None:
        """Add one frame: ground truth and the tracker's reported tracks."""
        from scipy.optimize import linear_sum_assignment

        keep = [g for g in gt if g.visibility >= self.min_visibility]
        ign = [g for g in gt if g.visibility < self.min_visibility]
        hyps = list(tracks)
        if ign and hyps:
            # Hypotheses on ignored people are neither hits nor false positives.
            iou = _iou(np.array([h.box.as_xyxy() for h in hyps]), np.array([g.box.as_xyxy() for g in ign]))
            # ...unless they match a counted person better.
            if keep:
                iou_keep = _iou(np.array([h.box.as_xyxy() for h in hyps]), np.array([g.box.as_xyxy() for g in keep]))
                iou[iou_keep.max(axis=1) >= self.iou] = 0.0
            r, c = linear_sum_assignment(-iou)
            drop = {int(i) for i, j in zip(r, c) if iou[i, j] >= self.iou}
            self.ignored_hyps += len(drop)
            hyps = [h for k, h in enumerate(hyps) if k not in drop]
        if keep and hyps:
            iou = _iou(np.array([g.box.as_xyxy() for g in keep]), np.array([h.box.as_xyxy() for h in hyps]))
            dist = np.where(iou >= self.iou, 1.0 - iou, np.nan)
        else:
            dist = np.empty((len(keep), len(hyps)))
        self.acc.update([g.gt_id for g in keep], [self._hid(h.track_id) for h in hyps], dist)


#: motmetrics names -> our report names.
METRICS = {
    "mota": "MOTA", "idf1": "IDF1", "num_switches": "ID_switches", "num_objects": "track_frames",
    "num_false_positives": "FP", "num_misses": "FN", "motp": "MOTP_1-IoU", "mostly_tracked": "MT",
    "num_unique_objects": "people",
}


def summarize(accs: Dict[str, "MotEvaluator"]) -> Dict[str, Dict[str, float]]:
    """MOT metrics per sequence and ``"OVERALL"`` (micro-averaged over all frames).

    Returns:
        ``{name: {"MOTA", "IDF1", "ID_switches", "track_frames", "FP", "FN", "MOTP_1-IoU", "MT",
        "people", "switches_per_100"}}``; ``switches_per_100`` is ID switches per 100 counted
        ground-truth boxes (track-frames).
    """
    import motmetrics as mm

    mh = mm.metrics.create()
    names = list(accs)
    df = mh.compute_many([accs[n].acc for n in names], metrics=list(METRICS), names=names,
                         generate_overall=len(names) > 1)
    out: Dict[str, Dict[str, float]] = {}
    for name, row in df.iterrows():
        d = {METRICS[k]: float(row[k]) for k in METRICS}
        d["switches_per_100"] = 100.0 * d["ID_switches"] / max(1.0, d["track_frames"])
        out["OVERALL" if name == "OVERALL" else str(name)] = d
    if len(names) == 1:
        out["OVERALL"] = dict(out[names[0]])
    return out


def centre_jitter(boxes: Iterable[BBox]) -> float:
    """Per-axis standard deviation (pixels) of box centres: ``sqrt((var_x + var_y) / 2)``."""
    c = np.array([b.center for b in boxes], dtype=np.float64).reshape(-1, 2)
    if len(c) < 2:
        return float("nan")
    return float(np.sqrt(c.var(axis=0, ddof=1).mean()))
