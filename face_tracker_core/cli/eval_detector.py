"""``face-tracker eval detector``: AP / recall / false faces of detectors on held-out photos.

The trained model and the classic baselines (Haar, dlib HOG) run in the same command on the same
images; writes ``detection_eval.json``, ``detection_eval.md`` and ``pr_curve.png``.
"""

from __future__ import annotations

import argparse
import logging
import os

COMMAND = ("eval", "detector")
HELP = "evaluate face detectors (default model vs Haar vs dlib HOG) on the held-out split"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=os.path.join("..", "shared", "data", "detection"),
                   help="folder with the detection sets")
    p.add_argument("--sets", nargs="+", default=["facemask", "celeba_one_face", "noface"])
    p.add_argument("--split", default="test", choices=["test", "val", "train", "all"],
                   help="file-hash split to evaluate (see eval/detection_split.py)")
    p.add_argument("--model", default=None, help="model file (.keras/.tflite/SavedModel) for the 'model' row; "
                   "default: the shipped default detector")
    p.add_argument("--baselines", nargs="*", default=["haar", "dlib_hog"], help="other backends to run")
    p.add_argument("--threshold", type=float, default=None, help="operating threshold of the model")
    p.add_argument("--limit", type=int, default=None, help="at most N images per set (quick checks)")
    p.add_argument("--out", default=os.path.join("runs", "eval", "detector"), help="output folder")
    p.add_argument("--choose-threshold", action="store_true",
                   help="instead: print the lowest threshold of the model keeping recall@0.4 >= --min-recall on "
                        "celeba_one_face and <= --max-false faces per noface scene, on --splits (never the test split)")
    p.add_argument("--splits", nargs="+", default=["train", "val"], help="splits used by --choose-threshold")
    p.add_argument("--min-recall", type=float, default=0.97)
    p.add_argument("--max-false", type=float, default=0.05)


def run(args: argparse.Namespace) -> int:
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
        detectors[b] = make_detector(b)
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
    sets = load_eval_sets(args.data_root, ["celeba_one_face", "noface"], "all")
    res = {name: run_detector(det, [s for s in samples if s.split in args.splits])[0]
           for name, samples in sets.items()}
    out = choose_threshold(res["celeba_one_face"], res["noface"], args.min_recall, args.max_false)
    out.update(one_face_images=len(res["celeba_one_face"]), no_face_images=len(res["noface"]), splits=args.splits)
    print(json.dumps(out))
    if not out["feasible"]:
        log.warning("no threshold meets both targets on %s", "+".join(args.splits))
    return 0
