"""The library of synthetic tracking scenarios, and simulated detector degradation.

Each scenario of :data:`SCENARIOS` is a :class:`~.synth_scene.Scenario` built from real face
sprites and scene photos (:mod:`.synth_faces`); positions and face sizes scale with the frame.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..types import BBox, Detection
from .synth_faces import FaceSprite, fit_image, load_backgrounds, load_face_sprites
from .synth_scene import Actor, GroundTruth, Occluder, Scenario

__all__ = ["SCENARIOS", "make_scenario", "benchmark_scenarios", "perturb_detections", "oracle_detections"]

SCENARIOS = ("crossing", "occlusion", "exit_reentry", "scale", "crowd", "still")
#: face sprites each scenario needs (2 when not listed)
SPRITES_NEEDED = {"crowd": 10, "crossing": 3, "exit_reentry": 3}

#: what a scenario builder returns: ``(duration_s, actors, occluders, still actor indices)``
_Built = Tuple[float, List[Actor], List[Occluder], Tuple[int, ...]]


def _patch(src: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A ``w`` x ``h`` patch of a real photo, with a dark outline so it reads as an object."""
    big = fit_image(src, max(w, 64) * 2, max(h, 64) * 2) if (src.shape[1] < w or src.shape[0] < h) else src
    y0 = int(rng.integers(0, big.shape[0] - h + 1))
    x0 = int(rng.integers(0, big.shape[1] - w + 1))
    p = big[y0:y0 + h, x0:x0 + w].copy()
    cv2.rectangle(p, (0, 0), (w - 1, h - 1), (20, 20, 20), 2)
    return p


def _crossing(sp, W, H, u, rng, backgrounds) -> _Built:
    """Three faces; A and B cross twice, swapping which one is in front."""
    actors = [
        # A (front) and B cross twice: first A in front, then B in front (depth swap).
        Actor(sp[0], [(0, 0.15 * W, 0.45 * H, 90 * u), (2.8, 0.85 * W, 0.5 * H, 90 * u),
                      (5.8, 0.15 * W, 0.42 * H, 85 * u)], depth=1.0),
        Actor(sp[1], [(0, 0.85 * W, 0.5 * H, 80 * u), (2.8, 0.15 * W, 0.45 * H, 80 * u),
                      (5.8, 0.85 * W, 0.5 * H, 95 * u)], depth=0.5, depth_change=(2.8, 1.5)),
        Actor(sp[2], [(0, 0.5 * W, 0.2 * H, 70 * u), (5.9, 0.55 * W, 0.22 * H, 70 * u)], depth=0.2),
    ]
    return 6.0, actors, [], ()


def _occlusion(sp, W, H, u, rng, backgrounds) -> _Built:
    """Two faces walking behind a pillar and a panel cut from a real photo."""
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
    return 6.0, actors, occ, ()


def _exit_reentry(sp, W, H, u, rng, backgrounds) -> _Built:
    """Faces leaving the view (1.5 s and 0.5 s) and coming back; one walking in late."""
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
    return 7.0, actors, [], ()


def _scale(sp, W, H, u, rng, backgrounds) -> _Built:
    """A face approaching and receding (face width 50 -> 200 -> 55 px at 640 x 480)."""
    actors = [
        Actor(sp[0], [(0, 0.4 * W, 0.5 * H, 50 * u), (2.5, 0.45 * W, 0.55 * H, 200 * u),
                      (5.0, 0.35 * W, 0.45 * H, 55 * u), (6.0, 0.3 * W, 0.45 * H, 70 * u)], depth=1.0),
        Actor(sp[1], [(0, 0.85 * W, 0.2 * H, 60 * u), (3.0, 0.75 * W, 0.7 * H, 120 * u),
                      (6.0, 0.85 * W, 0.25 * H, 60 * u)], depth=0.5),
    ]
    return 6.0, actors, [], ()


def _crowd(sp, W, H, u, rng, backgrounds) -> _Built:
    """Ten faces moving on straight lines, bouncing off the borders."""
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
    return dur, actors, [], ()


def _still(sp, W, H, u, rng, backgrounds) -> _Built:
    """A still face (for box jitter) and a moving one."""
    dur = 5.0
    actors = [
        Actor(sp[0], [(0, 0.35 * W, 0.45 * H, 100 * u), (dur, 0.35 * W, 0.45 * H, 100 * u)], bob=0.0),
        Actor(sp[1], [(0, 0.9 * W, 0.3 * H, 70 * u), (2.5, 0.65 * W, 0.75 * H, 70 * u),
                      (5.0, 0.9 * W, 0.3 * H, 70 * u)]),
    ]
    still = (0,)
    return dur, actors, [], still


_BUILDERS: Dict[str, Callable[..., _Built]] = {
    "crossing": _crossing, "occlusion": _occlusion, "exit_reentry": _exit_reentry, "scale": _scale,
    "crowd": _crowd, "still": _still,
}


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
    bg = fit_image(backgrounds[0], width, height)
    need = SPRITES_NEEDED.get(name, 2)
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})")
    if len(sprites) < need:
        raise ValueError(f"scenario '{name}' needs {need} face sprites, got {len(sprites)}")
    dur, actors, occ, still = _BUILDERS[name](list(sprites), W, H, u, rng, backgrounds)
    return Scenario(name=name, background=bg, actors=actors, occluders=occ,
                    duration_s=duration_s or dur, drop_rate=drop_rate, seed=seed, still_ids=still)


def benchmark_scenarios(data_root: str, seed: int = 0, width: int = 640, height: int = 480,
                        names: Sequence[str] = SCENARIOS, detector=None) -> List[Scenario]:
    """The benchmark's scenarios with different people and backgrounds each (deterministic)."""
    total = sum(SPRITES_NEEDED.get(n, 2) for n in names)
    sprites = load_face_sprites(data_root, total, seed=seed, detector=detector)
    bgs = load_backgrounds(data_root, 2 * len(names), seed=seed)
    out, k = [], 0
    for i, n in enumerate(names):
        c = SPRITES_NEEDED.get(n, 2)
        out.append(make_scenario(n, sprites[k:k + c], bgs[2 * i:2 * i + 2], width, height, seed=seed + i))
        k += c
    return out


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
