"""Tracking benchmark (not a test): MOTA / IDF1 / ID switches / jitter / speed of the face tracker.

1. Synthetic sequences made of real pictures (:mod:`face_tracker_core.eval.mot`): real CelebA heads
   moving over real scene photos, crossing, hidden behind real photo patches, leaving and coming
   back, approaching the camera, a crowd of 10 and a still face; frames are dropped at random
   (irregular stamps). The chosen detector backend runs on every rendered frame; its detections
   then lose ``--miss-rate`` of their boxes at random and get ``--box-noise`` jitter (a weaker
   detector), and feed the tracker. Scored against the exact ground truth with ``motmetrics``.
2. The talking-face videos of ``../shared/data/video``: one person each, so the tracker should
   keep ONE id for the speaker for the whole video.
3. Tracker cost per frame with 10 faces.

Each is run for two tracker variants: ``motion`` (the default: Kalman + ByteTrack association,
no appearance) and ``appearance`` (the same plus the appearance hook fed by the dlib face
embedder of :mod:`face_tracker_core.recognition`, to restore ids of faces that come back).

    python benchmarks/bench_tracking.py [--detector default] [--data ../shared/data] [--quick]

Detections are cached per backend/scene under ``runs/bench/cache/tracking`` (the detector is the
slow part; the cache key includes ``detector.describe()``). Writes ``runs/bench/tracking.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from typing import Dict, List, Optional

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, stats_ms, table, write  # noqa: E402

from face_tracker_core.boxes import iou_matrix  # noqa: E402
from face_tracker_core.cli.options import add_detector_option  # noqa: E402
from face_tracker_core.eval import mot  # noqa: E402
from face_tracker_core.infer.tracker import Tracker, embedder_hook  # noqa: E402
from face_tracker_core.types import BBox, Detection  # noqa: E402

log = logging.getLogger("bench_tracking")
CACHE = os.path.join(ROOT, "runs", "bench", "cache", "tracking")


# ------------------------------------------------------------------------------------------------
def _dets_to_list(dets: List[Detection]) -> List[List[float]]:
    return [[*d.box.as_xyxy(), d.score] for d in dets]


def _list_to_dets(rows) -> List[Detection]:
    return [Detection(BBox(*r[:4]), float(r[4])) for r in rows]


def _cached(key: str, compute):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, hashlib.sha1(key.encode()).hexdigest()[:16] + ".json")
    if os.path.isfile(path):
        with open(path) as fh:
            return json.load(fh)
    value = compute()
    with open(path + ".tmp", "w") as fh:
        json.dump(value, fh)
    os.replace(path + ".tmp", path)
    return value


def detector_id(detector) -> str:
    """``describe()`` plus the hash of its model file: retrained weights under the same name must
    not reuse cached detections."""
    from face_tracker_core.infer.base import weights_signature

    sig = weights_signature(detector)
    return f"{detector.describe()} [{sig[:16]}]" if sig else detector.describe()


def scene_detections(scn: mot.Scenario, detector) -> List[List[List[float]]]:
    """Detector output on every delivered frame of ``scn`` (cached)."""
    sig = hashlib.sha1(scn.background[::7, ::7].tobytes()).hexdigest()[:10]
    # Everything that changes the pixels: backend, clock, people and their paths, occluders.
    key = json.dumps([detector_id(detector), mot.GENERATOR_VERSION, scn.name, scn.seed, scn.width, scn.height,
                      sig, scn.noise,
                      [[a.sprite.path, a.keys, a.depth, a.bob, a.depth_change] for a in scn.actors],
                      [[o.x, o.y, list(o.patch.shape)] for o in scn.occluders], scn.stamps().round(6).tolist()])

    def compute():
        out = []
        t0 = time.time()
        for k, (_, frame, _) in enumerate(mot.frames(scn)):
            out.append(_dets_to_list(detector.detect(frame)))
        log.info("%s: detected %d frames in %.0f s", scn.name, len(out), time.time() - t0)
        return out

    return _cached(key, compute)


def read_video(path: str, max_frames: int = 0):
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    k = 0
    while True:
        ok, frame = cap.read()
        if not ok or (max_frames and k >= max_frames):
            break
        yield k / fps, frame
        k += 1
    cap.release()


def video_detections(path: str, detector, max_frames: int) -> List[List[List[float]]]:
    key = json.dumps([detector_id(detector), path, os.path.getsize(path), max_frames])

    def compute():
        t0 = time.time()
        out = [_dets_to_list(detector.detect(f)) for _, f in read_video(path, max_frames)]
        log.info("%s: detected %d frames in %.0f s", os.path.basename(path), len(out), time.time() - t0)
        return out

    return _cached(key, compute)


# ------------------------------------------------------------------------------------------------
def run_scene(scn: mot.Scenario, dets_per_frame, tracker: Tracker, args, with_frames: bool) -> Dict[str, object]:
    """Track one scene; returns metrics inputs (evaluator, jitter samples, timings).

    ``dets_per_frame=None`` uses perfect detections from the ground truth (people at least 60 %
    visible) instead of the detector: the same misses and noise are added, so the tracker's own
    share of the errors shows.
    """
    ev = mot.MotEvaluator(min_visibility=args.min_visibility)
    rng = np.random.default_rng(scn.seed + 99)
    times = []
    still_out: Dict[int, List[BBox]] = {g: [] for g in scn.still_ids}
    still_det: Dict[int, List[BBox]] = {g: [] for g in scn.still_ids}
    still_raw: Dict[int, List[BBox]] = {g: [] for g in scn.still_ids}
    it = mot.frames(scn) if with_frames else ((t, None, mot.render_gt(scn, t)) for t in scn.stamps())
    n_faces = []
    for k, (stamp, frame, gt) in enumerate(it):
        raw = mot.oracle_detections(gt) if dets_per_frame is None else _list_to_dets(dets_per_frame[k])
        dets = mot.perturb_detections(raw, rng, args.miss_rate, args.box_noise)
        t0 = time.thread_time()
        tracks = tracker.update(dets, stamp, frame=frame)
        times.append((time.thread_time() - t0) * 1000.0)
        n_faces.append(len(tracks))
        ev.update(gt, tracks)
        for g in gt:
            if g.gt_id in still_out and g.visibility >= 0.99:
                gb = np.array([g.box.as_xyxy()])
                for coll, items in ((still_out, [t.box for t in tracks]), (still_det, [d.box for d in dets]),
                                    (still_raw, [d.box for d in raw])):
                    if items:
                        iou = iou_matrix(gb, np.array([b.as_xyxy() for b in items]))[0]
                        if iou.max() >= 0.5:
                            coll[g.gt_id].append(items[int(iou.argmax())])
    return {"ev": ev, "times": times, "n_tracks": n_faces, "still_out": still_out, "still_det": still_det,
            "still_raw": still_raw}


def detector_quality(scn: mot.Scenario, dets_per_frame, min_visibility: float,
                     min_score: float = 0.0) -> Dict[str, float]:
    """Precision/recall of the raw detector on a scene (IoU >= 0.5, people >= min_visibility),
    counting detections with score >= ``min_score``."""
    from scipy.optimize import linear_sum_assignment

    tp = fp = fn = 0
    for t, raw in zip(scn.stamps(), dets_per_frame):
        raw = [r for r in raw if r[4] >= min_score]
        gt = [g for g in mot.render_gt(scn, float(t)) if g.visibility >= min_visibility]
        ign = [g for g in mot.render_gt(scn, float(t)) if g.visibility < min_visibility]
        b = np.array([r[:4] for r in raw]).reshape(-1, 4)
        iou = iou_matrix(np.array([g.box.as_xyxy() for g in gt]).reshape(-1, 4), b)
        r, c = linear_sum_assignment(-iou) if iou.size else (np.empty(0, int), np.empty(0, int))
        hit = iou[r, c] >= 0.5
        tp += int(hit.sum())
        fn += len(gt) - int(hit.sum())
        unmatched = np.setdiff1d(np.arange(len(b)), c[hit])
        if ign and unmatched.size:   # detections of barely visible people are not false
            ii = iou_matrix(b[unmatched], np.array([g.box.as_xyxy() for g in ign]))
            unmatched = unmatched[ii.max(axis=1) < 0.5]
        fp += int(unmatched.size)
    return {"precision": round(tp / max(1, tp + fp), 3), "recall": round(tp / max(1, tp + fn), 3),
            "false_per_frame": round(fp / max(1, len(dets_per_frame)), 3)}


def speaker_ids(dets_per_frame, tracker: Tracker, frames_iter, min_score: float = 0.5) -> Dict[str, object]:
    """One talking-face video: which ids the speaker got.

    The speaker's reference box in a frame is its largest detection (score >= ``min_score``: weak
    boxes never define the speaker), used only when it overlaps
    (IoU >= 0.5) the video's median largest box: the speaker sits still enough for that, and it
    keeps a false face nested inside the real one (Haar finds some) from posing as the speaker
    in a frame where the real face was missed. The speaker's id in that frame is the reported
    track with IoU >= 0.5 to the reference.
    """
    dets_all = [_list_to_dets(raw) for raw in dets_per_frame]
    strong = [[d for d in ds if d.score >= min_score] for ds in dets_all]
    largest = [max(d, key=lambda x: x.box.area).box.as_xyxy() for d in strong if d]
    median = np.median(np.array(largest), axis=0) if largest else None
    ids, others, covered, with_speaker = [], set(), 0, 0
    for (stamp, frame), dets, sdets in zip(frames_iter, dets_all, strong):
        tracks = tracker.update(dets, stamp, frame=frame)
        ref = max(sdets, key=lambda d: d.box.area).box if sdets else None
        if ref is not None and iou_matrix(np.array([ref.as_xyxy()]), median[None])[0, 0] < 0.5:
            ref = None
        matched = None
        if ref is not None:
            with_speaker += 1
            if tracks:
                iou = iou_matrix(np.array([ref.as_xyxy()]), np.array([t.box.as_xyxy() for t in tracks]))[0]
                if iou.max() >= 0.5:
                    matched = tracks[int(iou.argmax())].track_id
        if matched is not None:
            covered += 1
            if not ids or ids[-1] != matched:
                ids.append(matched)
        others.update(t.track_id for t in tracks)
    uniq = list(dict.fromkeys(ids))
    return {"speaker_ids": len(uniq), "id_changes": max(0, len(ids) - 1),
            "other_ids": len(others - set(uniq)), "coverage": round(covered / max(1, with_speaker), 3),
            "frames": len(dets_per_frame)}


def timing_10_faces(frames: int = 3000, seed: int = 0) -> Dict[str, float]:
    """Tracker ms/frame on 10 moving faces (exact boxes + noise, 10 % misses): tracker cost only."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(60, 580, (10, 2))
    vel = rng.normal(0, 80, (10, 2))
    tr = Tracker()
    times, cpu = [], []
    for k in range(frames):
        pos += vel / 30.0
        bounce = (pos < 40) | (pos > 600)
        vel[bounce] *= -1
        dets = [Detection(BBox.from_cxcywh(x + rng.normal(0, 2), y + rng.normal(0, 2), 60, 60), 0.9)
                for x, y in pos if rng.random() > 0.1]
        t0, c0 = time.perf_counter(), time.thread_time()
        tr.update(dets, k / 30.0)
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    # CPU time of this thread is what the tracker costs; wall time adds whatever else the (shared)
    # machine was doing meanwhile.
    return {"wall": stats_ms(times[30:]), "cpu": stats_ms(cpu[30:])}


# ------------------------------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_detector_option(ap, "detector backend for make_detector (default: default)")
    ap.add_argument("--detector-threshold", type=float, default=None,
                    help="detector score threshold; default: the tracker's low_score, as the tracker node runs it "
                         "(weak boxes feed ByteTrack's second stage)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"), help="shared data folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", nargs="*", default=list(mot.SCENARIOS), choices=mot.SCENARIOS)
    ap.add_argument("--miss-rate", type=float, default=0.1, help="fraction of detections removed at random")
    ap.add_argument("--box-noise", type=float, default=0.03, help="box jitter, fraction of the box size (std)")
    ap.add_argument("--min-visibility", type=float, default=0.5, help="people less visible are ignored")
    ap.add_argument("--variants", nargs="*", default=["motion", "appearance"], choices=["motion", "appearance"])
    ap.add_argument("--videos", nargs="*", default=None, help="video files (default: all of <data>/video)")
    ap.add_argument("--max-video-frames", type=int, default=0, help="0 = whole videos")
    ap.add_argument("--quick", action="store_true", help="3 short scenes, 150 video frames (smoke run)")
    ap.add_argument("--name", default="tracking", help="output name under runs/bench/")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cv2.setNumThreads(1)

    from face_tracker_core.infer.base import make_detector

    thr = Tracker().config.low_score if args.detector_threshold is None else args.detector_threshold
    detector = make_detector(args.detector, score_threshold=thr)
    log.info("detector: %s", detector.describe())
    names = args.scenarios if not args.quick else ["crossing", "occlusion", "still"]
    # Heads are cut around the benchmarked detector's own box: ground truth in its box convention.
    scenes = mot.benchmark_scenarios(args.data, seed=args.seed, names=names, detector=detector)
    dets = {s.name: scene_detections(s, detector) for s in scenes}
    vids = args.videos
    if vids is None:
        vdir = os.path.join(args.data, "video")
        vids = (sorted(os.path.join(vdir, f) for f in os.listdir(vdir) if f.endswith(".mp4"))
                if os.path.isdir(vdir) else [])
    max_vf = 150 if args.quick and not args.max_video_frames else args.max_video_frames
    vdets = {v: video_detections(v, detector, max_vf) for v in vids}

    embedder = None
    if "appearance" in args.variants:
        from face_tracker_core.recognition.embedders import make_embedder
        embedder = make_embedder("dlib")

    result: Dict[str, object] = {
        "backend": args.detector, "detector": detector.describe(), "seed": args.seed, "miss_rate": args.miss_rate,
        "box_noise": args.box_noise, "min_visibility": args.min_visibility, "tracker_config": Tracker().config.__dict__,
        "scenes": {s.name: {"frames": len(dets[s.name]), "people": len(s.actors), "duration_s": s.duration_s,
                            "detector": detector_quality(s, dets[s.name], args.min_visibility,
                                                         Tracker().config.high_score),
                            "detector_all_boxes": detector_quality(s, dets[s.name], args.min_visibility)}
                   for s in scenes},
        "variants": {},
    }
    md = [f"Tracking benchmark: detector `{detector.describe()}` (backend `{args.detector}`), "
          f"+{args.miss_rate:.0%} random misses, box noise {args.box_noise:.0%}, seed {args.seed}", ""]
    hs = Tracker().config.high_score
    drows = [{"scene": n, "frames": d["frames"], "people": d["people"], **d["detector"],
              "recall (all boxes)": d["detector_all_boxes"]["recall"]} for n, d in result["scenes"].items()]
    md += [f"Raw detector on the rendered frames (IoU >= 0.5; boxes with score >= {hs}, the tracker's high_score; "
           f"the last column counts the weak boxes too):", "",
           table(drows, ["scene", "frames", "people", "precision", "recall", "false_per_frame", "recall (all boxes)"]),
           ""]
    for variant in args.variants:
        hook = embedder_hook(embedder) if variant == "appearance" else None
        accs, jit, times = {}, {}, []
        counts = []
        for s in scenes:
            tr = Tracker(appearance=hook)
            r = run_scene(s, dets[s.name], tr, args, with_frames=hook is not None)
            accs[s.name] = r["ev"]
            if s.name == "crowd":
                times.extend(r["times"])
                counts.extend(r["n_tracks"])
            for g in s.still_ids:
                # also on the detector's own boxes (no simulated misses/noise): what a robot sees
                clean = run_scene(s, dets[s.name], Tracker(appearance=hook),
                                  argparse.Namespace(**{**vars(args), "miss_rate": 0.0, "box_noise": 0.0}),
                                  with_frames=hook is not None)
                jit = {"tracker_px": round(mot.centre_jitter(r["still_out"][g]), 2),
                       "detections_px": round(mot.centre_jitter(r["still_det"][g]), 2),
                       "clean_tracker_px": round(mot.centre_jitter(clean["still_out"][g]), 2),
                       "clean_detector_px": round(mot.centre_jitter(clean["still_raw"][g]), 2),
                       "face_px": round(float(np.median([b.width for b in r["still_raw"][g]] or [0])), 1),
                       "frames": len(r["still_out"][g])}
        summ = mot.summarize(accs)
        oracle = mot.summarize({s.name: run_scene(s, None, Tracker(appearance=hook), args, hook is not None)["ev"]
                                for s in scenes})
        videos = {}
        for v in vids:
            tr = Tracker(appearance=hook)
            fit = read_video(v, max_vf) if hook is not None else ((k / 30.0, None) for k in range(len(vdets[v])))
            if hook is None:  # stamps from the file's frame rate, without decoding
                cap = cv2.VideoCapture(v)
                fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
                cap.release()
                fit = ((k / fps, None) for k in range(len(vdets[v])))
            videos[os.path.basename(v)] = speaker_ids(vdets[v], tr, fit)
        vres = {"scenes": {k: {m: round(x, 4) for m, x in d.items()} for k, d in summ.items()},
                "oracle_scenes": {k: {m: round(x, 4) for m, x in d.items()} for k, d in oracle.items()},
                "jitter_still_face": jit, "videos": videos,
                "crowd_tracker_ms": stats_ms(times),
                "crowd_mean_tracks": round(float(np.mean(counts)), 2) if counts else 0}
        result["variants"][variant] = vres
        rows = [{"scene": k, "MOTA": f"{d['MOTA']:.3f}", "IDF1": f"{d['IDF1']:.3f}", "ID sw": int(d["ID_switches"]),
                 "sw/100": f"{d['switches_per_100']:.2f}", "FP": int(d["FP"]), "FN": int(d["FN"]),
                 "track-frames": int(d["track_frames"]), "people": int(d["people"]),
                 "tracker-only IDF1": f"{oracle[k]['IDF1']:.3f}", "tracker-only ID sw": int(oracle[k]["ID_switches"])}
                for k, d in summ.items()]
        md += [f"### variant `{variant}`", "", table(rows, rows[0].keys()), ""]
        if jit:
            md += [f"Still face ({jit['face_px']} px wide, {jit['frames']} frames), std of the box centre: "
                   f"tracker {jit['tracker_px']} px on the noisy detections ({jit['detections_px']} px); "
                   f"tracker {jit['clean_tracker_px']} px on the detector's own boxes "
                   f"({jit['clean_detector_px']} px).", ""]
        if videos:
            vrows = [{"video": k, **d} for k, d in videos.items()]
            md += [table(vrows, ["video", "frames", "speaker_ids", "id_changes", "coverage", "other_ids"]), ""]
        if times:
            md += [f"Tracker CPU time on the crowd scene (10 people, mean {vres['crowd_mean_tracks']} tracks "
                   f"reported, all the detector's weak boxes fed): median {vres['crowd_tracker_ms'].get('median')} ms, "
                   f"p95 {vres['crowd_tracker_ms'].get('p95')} ms"
                   + (" (includes the embedder calls)" if hook is not None else ""), ""]
    result["tracker_10_faces_ms"] = timing_10_faces()
    t10 = result["tracker_10_faces_ms"]
    md += [f"Tracker alone, 10 moving faces, {t10['cpu']['n']} frames: CPU median {t10['cpu']['median']} ms, "
           f"p95 {t10['cpu']['p95']} ms per frame (wall: median {t10['wall']['median']} ms, "
           f"p95 {t10['wall']['p95']} ms "
           f"on a shared machine, load {os.getloadavg()[0]:.1f}).", ""]
    write(args.name, result, "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
