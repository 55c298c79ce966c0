"""Evaluation of face detectors on held-out photos (``face-tracker eval detector``).

Every detector runs on the *same* images in one call, so the table compares like with like:

* ``facemask``, ``facemask_more`` (and ``dlib_faces``): all faces labelled -> AP@0.5, AP@[.5:.95], recall@0.4, mean IoU;
* ``celeba_one_face``: one face labelled per photo -> recall@IoU0.4 and mean IoU (no precision:
  other faces in the photo are unlabelled);
* ``noface`` (and ``noface_more``): no faces -> false faces per image, also pooled over all
  no-face sets (``no_face_all``).

A baseline whose backend cannot be loaded (an optional package missing) gets a row saying so.

AP uses each detector's full candidate list (scores down to a low threshold); recall, mean IoU
and false faces use its operating threshold (what a user of the backend gets).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..imaging import read_image
from .detection_metrics import precision_recall, summarize

log = logging.getLogger(__name__)

#: kind of each known set (see the module docstring).
SET_KINDS = {"facemask": "all_faces", "facemask_more": "all_faces", "dlib_faces": "all_faces",
             "celeba_one_face": "one_face", "noface": "no_face", "noface_more": "no_face"}
#: report key of the no-face sets pooled (false faces per image over every face-free scene).
ALL_NO_FACE = "no_face_all"
#: lowest score asked of a detector for AP curves.
CANDIDATE_SCORE = 0.05


def load_eval_sets(data_root: str, sets: Sequence[str], split: str = "test", limit: Optional[int] = None):
    """``{set: [DetSample]}`` of one split (by the file-hash split of :mod:`.detection_split`)."""
    from ..train.detector_data import load_detection_set

    out = {}
    for name in sets:
        samples = [s for s in load_detection_set(os.path.join(data_root, name), name) if split in ("all", s.split)]
        if limit:
            samples = samples[:limit]
        out[name] = samples
    return out


def run_detector(detector, samples) -> Tuple[List[Tuple[np.ndarray, np.ndarray, np.ndarray]], List[float]]:
    """Detect on every sample; returns per image ``(boxes, scores, gts)`` and ms per image.

    An unreadable image is logged and skipped (it does not stop the evaluation).
    """
    results, times = [], []
    for s in samples:
        try:
            img = read_image(s.image_path)
        except Exception as exc:
            log.error("%s", exc)
            continue
        t0 = time.perf_counter()
        dets = detector.detect(img)
        times.append((time.perf_counter() - t0) * 1000)
        boxes = np.array([d.box.as_xyxy() for d in dets], np.float64).reshape(-1, 4)
        scores = np.array([d.score for d in dets], np.float64)
        results.append((boxes, scores, np.asarray(s.boxes, np.float64).reshape(-1, 4)))
    return results, times


def evaluate(detectors: Mapping[str, object], eval_sets: Mapping[str, Sequence], out_dir: Optional[str] = None
             ) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Evaluate several detectors on the same sets.

    Args:
        detectors: ``{name: FaceDetector}``; a detector with a ``score_threshold`` attribute is
            asked for candidates down to :data:`CANDIDATE_SCORE` and judged at its own threshold.
        eval_sets: ``{set name: samples}`` (objects with ``image_path`` and ``boxes [K, 4]``).
        out_dir: when given, writes ``detection_eval.json``, ``detection_eval.md`` and
            ``pr_curve.png`` there.

    Returns:
        ``{detector: {set: metrics}}`` (see :func:`~.detection_metrics.summarize`), each with
        ``ms_per_image`` and ``threshold``.
    """
    report: Dict[str, Dict[str, Dict[str, float]]] = {}
    curves: Dict[str, Dict[str, tuple]] = {}
    for name, det in detectors.items():
        op = float(getattr(det, "score_threshold", 0.0))
        if hasattr(det, "score_threshold"):
            det.score_threshold = min(op, CANDIDATE_SCORE)
        report[name] = {}
        if isinstance(det, Exception):  # a baseline that could not be loaded: the row says why
            report[name] = {"_unavailable": str(det)}
            continue
        try:
            for set_name, samples in eval_sets.items():
                kind = SET_KINDS.get(set_name, "all_faces")
                results, times = run_detector(det, samples)
                m = summarize(results, kind, op)
                m["ms_per_image"] = float(np.median(times)) if times else float("nan")
                m["threshold"] = op
                report[name][set_name] = m
                if kind == "all_faces":
                    curves.setdefault(set_name, {})[name] = precision_recall(results, 0.5)
                log.info("%s on %s: %s", name, set_name, {k: round(v, 4) for k, v in m.items()})
        finally:
            if hasattr(det, "score_threshold"):
                det.score_threshold = op
        _pool_no_face(report[name], op)
    if out_dir:
        write_report(report, curves, out_dir)
    return report


def _pool_no_face(per_set: Dict[str, Dict[str, float]], threshold: float) -> None:
    """Add :data:`ALL_NO_FACE`: false faces per image over all no-face sets together."""
    sets = [m for k, m in per_set.items() if SET_KINDS.get(k) == "no_face"]
    if len(sets) < 2:
        return
    n = sum(m["images"] for m in sets)
    false = sum(m["false_per_image"] * m["images"] for m in sets)
    per_set[ALL_NO_FACE] = {"images": n, "false_per_image": false / n if n else float("nan"),
                            "threshold": threshold}


def markdown_table(report: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """One row per detector, the headline metric of each set as columns."""
    order = list(SET_KINDS) + [ALL_NO_FACE]
    sets = sorted({s for v in report.values() for s in v if not s.startswith("_")},
                  key=lambda s: order.index(s) if s in order else 99)
    cols: List[Tuple[str, str, str]] = []
    for s in sets:
        kind = "no_face" if s == ALL_NO_FACE else SET_KINDS.get(s, "all_faces")
        if kind == "all_faces":
            cols += [(s, "ap50", f"{s} AP@0.5"), (s, "ap50_95", f"{s} AP@[.5:.95]"), (s, "recall40", f"{s} recall@0.4")]
        elif kind == "one_face":
            cols += [(s, "recall40", f"{s} recall@0.4"), (s, "mean_iou", f"{s} mean IoU")]
        elif s == ALL_NO_FACE:
            cols += [(s, "false_per_image", "all no-face scenes false faces/img")]
        else:
            cols += [(s, "false_per_image", f"{s} false faces/img")]
    cols.append(("", "ms", "median ms/img"))
    lines = ["| detector | " + " | ".join(c[2] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, per_set in report.items():
        if "_unavailable" in per_set:
            lines.append(f"| {name} | not run: {per_set['_unavailable']} |" + " |" * (len(cols) - 1))
            continue
        cells = []
        for s, key, _ in cols:
            if key == "ms":
                vals = [m["ms_per_image"] for m in per_set.values() if "ms_per_image" in m]
                cells.append(f"{np.nanmedian(vals):.1f}" if vals else "")
            else:
                v = per_set.get(s, {}).get(key)
                cells.append("" if v is None else f"{v:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report, curves, out_dir: str) -> Dict[str, str]:
    """Write JSON, markdown and the PR curve PNG; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "detection_eval.json"), "markdown": os.path.join(out_dir, "detection_eval.md")}
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, sort_keys=True)
    with open(paths["markdown"], "w", encoding="utf-8") as fh:
        fh.write(markdown_table(report) + "\n")
    if curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), dpi=100, squeeze=False)
        for ax, (set_name, per_det) in zip(axes[0], sorted(curves.items())):
            for name, (p, r, _) in per_det.items():
                ap = report[name][set_name].get("ap50", float("nan"))
                ax.plot(r, p, label=f"{name} (AP@0.5 {ap:.3f})")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{set_name}, IoU 0.5")
            ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        paths["pr_curve"] = os.path.join(out_dir, "pr_curve.png")
        fig.savefig(paths["pr_curve"])
        plt.close(fig)
    return paths
