"""``face-tracker eval attributes``: per-attribute accuracy of a model next to the majority baseline."""

from __future__ import annotations

import argparse
import json
import logging
import os

COMMAND = ("eval", "attributes")
HELP = "evaluate an attribute model on CelebA-format labels (per-attribute table vs the majority baseline)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = os.path.join("..", "shared", "data", "attributes", "celeba")
    p.add_argument("--model", default=None, help=".keras attribute model (default: the shipped one)")
    p.add_argument("--attr-file", default=os.path.join(d, "list_attr_celeba.txt"))
    p.add_argument("--images", default=os.path.join(d, "images"))
    p.add_argument("--bbox-file", default=None, help="list_bbox_celeba.txt: crop these boxes instead of detecting")
    p.add_argument("--split", default="test", choices=("test", "val", "train", "all"),
                   help="which part of the hash split to evaluate (the split the model was trained with)")
    p.add_argument("--test-frac", type=float, default=0.2)
    p.add_argument("--val-frac", type=float, default=0.15)
    p.add_argument("--cache", default=os.path.join("runs", "cache", "attributes"))
    p.add_argument("--detector", default="default")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--markdown", action="store_true", help="print the Markdown table instead of JSON")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..attributes.crops import FaceCropper
    from ..attributes.metrics import majority_classes, markdown_table, mean_row
    from ..attributes.model import load_model
    from ..attributes.predictor import DEFAULT_MODEL
    from ..attributes.training import AttributeTrainConfig, attribute_data, evaluate_attribute_model
    from ..errors import DataError

    path = args.model or DEFAULT_MODEL
    model, meta = load_model(path)
    crop = meta.get("crop", {"margin": 0.4, "size": int(model.input_shape[1]), "color": "rgb"})
    cfg = AttributeTrainConfig(attr_file=args.attr_file, images_dir=args.images, bbox_file=args.bbox_file,
                               cache_root=args.cache, test_frac=args.test_frac, val_frac=args.val_frac,
                               size=crop["size"], margin=crop["margin"], color=crop["color"], detector=args.detector)
    cropper = FaceCropper(args.detector, margin=crop["margin"], size=crop["size"], color=crop["color"])
    table, cache, splits = attribute_data(cfg, cropper)
    names = meta.get("attributes") or list(table.names)
    if list(names) != list(table.names):
        raise DataError(f"{args.attr_file}: attribute names differ from those of {path}")
    rows = np.concatenate(list(splits.values())) if args.split == "all" else splits[args.split]
    # The baseline must come from the training labels, as during training.
    majority = np.asarray(meta["majority"], np.uint8) if "majority" in meta else \
        majority_classes(table.labels[splits["train"]])
    report, _ = evaluate_attribute_model(model, cache.crops, table.labels.astype(np.float32), rows, majority,
                                         names, args.threshold)
    if args.markdown:
        print(markdown_table(report))
    else:
        print(json.dumps({"model": path, "split": args.split, "photos": int(len(rows)), "mean": mean_row(report),
                          "attributes": report}, indent=1))
    return 0
