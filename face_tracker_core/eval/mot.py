"""MOT metrics of the tracker on synthetic multi-face sequences with exact ground truth.

The sequences (:mod:`.synth_scene`, :mod:`.synth_scenarios`; their names are re-exported here) are
made of real pictures: head cut-outs of real CelebA photos move over real scene photos and behind
real photo patches. Scenarios (:func:`benchmark_scenarios`) cover what breaks trackers: two faces
crossing (one in front of the other), faces walking behind an occluder for a few frames, faces
leaving the view and coming back, a face approaching and receding (scale x4), a crowd of 10, and
a still face (for box jitter). :func:`perturb_detections` removes detections at random and adds
box noise to what a real detector found, to simulate a worse detector.

Ground-truth conventions (used by :class:`MotEvaluator`):

* boxes are the *detector's own* face box convention (the detector's box on the source photo,
  mapped through the exact scale/translation of the frame), corner format, pixels;
* a person counts in a frame when at least ``min_visibility`` (default 0.5) of its face box is
  visible (inside the frame and not covered by a face or occluder in front); less visible
  boxes are *ignored* (not a miss when not tracked; a hypothesis on them is not a false positive),
  as in the MOTChallenge evaluation;
* a hypothesis matches a person at IoU >= 0.5.
"""

from __future__ import annotations

from typing import Dict, Iterable, Sequence

import numpy as np

from ..boxes import iou_matrix
from ..types import BBox, Track
from .synth_faces import FaceSprite, load_backgrounds, load_face_sprites
from .synth_scenarios import SCENARIOS, benchmark_scenarios, make_scenario, oracle_detections, perturb_detections
from .synth_scene import GENERATOR_VERSION, Actor, GroundTruth, Occluder, Scenario, frames, render, render_gt

#: the scene API is re-exported: ``mot.make_scenario``, ``mot.frames``... next to the metrics.
__all__ = ["FaceSprite", "load_backgrounds", "load_face_sprites", "SCENARIOS", "benchmark_scenarios", "make_scenario",
           "oracle_detections", "perturb_detections", "GENERATOR_VERSION", "Actor", "GroundTruth", "Occluder",
           "Scenario", "frames", "render", "render_gt", "MotEvaluator", "METRICS", "summarize", "centre_jitter"]


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
            iou = iou_matrix(np.array([h.box.as_xyxy() for h in hyps]), np.array([g.box.as_xyxy() for g in ign]))
            # ...unless they match a counted person better.
            if keep:
                iou_keep = iou_matrix(np.array([h.box.as_xyxy() for h in hyps]), np.array([g.box.as_xyxy() for g in keep]))
                iou[iou_keep.max(axis=1) >= self.iou] = 0.0
            r, c = linear_sum_assignment(-iou)
            drop = {int(i) for i, j in zip(r, c) if iou[i, j] >= self.iou}
            self.ignored_hyps += len(drop)
            hyps = [h for k, h in enumerate(hyps) if k not in drop]
        if keep and hyps:
            iou = iou_matrix(np.array([g.box.as_xyxy() for g in keep]), np.array([h.box.as_xyxy() for h in hyps]))
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
