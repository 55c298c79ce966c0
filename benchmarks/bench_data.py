"""Data pipeline throughput: augmentation (1 vs 2 worker processes) and the tf.data builders.

    nice -n 10 python benchmarks/bench_data.py                    # 60 facemask photos x 4 variants
    nice -n 10 python benchmarks/bench_data.py --images 200 --variants 10

Writes ``runs/bench/data.json`` and ``runs/bench/data.md`` and prints the markdown table.
Augmentation times include starting the worker processes and writing JPEG + LabelMe files (what
``face-tracker data augment`` costs); tf.data is timed for a first epoch (decode + resize, filling
the cache) and a second, cached epoch.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import ROOT, table, write  # noqa: E402


def _epoch(ds) -> tuple:
    t0 = time.perf_counter()
    n = 0
    for images, _ in ds:
        n += int(images.shape[0])
    return n, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "detection", "facemask"))
    p.add_argument("--images", type=int, default=60, help="input photos")
    p.add_argument("--variants", type=int, default=4, help="augmented variants per photo")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from face_tracker_core.data.augment import augment_samples
    from face_tracker_core.data.dataset import import_folder

    if not os.path.isdir(args.data):
        print(f"{args.data}: no such folder (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    samples = import_folder(args.data).samples[: args.images]
    rows = []
    result = {"inputs": len(samples), "variants": args.variants, "data": args.data, "augment": {}, "tfdata": {}}
    tmp = tempfile.mkdtemp(prefix="bench_data_")
    try:
        for workers in (1, 2):
            out = os.path.join(tmp, f"w{workers}")
            t0 = time.perf_counter()
            rep = augment_samples(samples, out, variants=args.variants, workers=workers, seed=0)
            dt = time.perf_counter() - t0
            ips = len(rep.samples) / dt
            result["augment"][f"workers_{workers}"] = {"images": len(rep.samples), "seconds": round(dt, 2),
                                                       "images_per_s": round(ips, 1)}
            rows.append({"stage": f"augment, {workers} worker{'s' if workers > 1 else ''}",
                         "images": len(rep.samples), "seconds": f"{dt:.2f}", "images/s": f"{ips:.1f}"})
        a1, a2 = result["augment"]["workers_1"], result["augment"]["workers_2"]
        result["augment"]["speedup_2_vs_1"] = round(a2["images_per_s"] / a1["images_per_s"], 2)

        from face_tracker_core.data.dataset import import_folder as _imp
        from face_tracker_core.data.tfdata import multi_face_dataset, single_face_dataset

        aug_samples = _imp(os.path.join(tmp, "w2")).samples
        for name, build in (
                ("single_face 120x120", lambda s: single_face_dataset(s, 120, args.batch, shuffle=True)),
                ("multi_face 320x320", lambda s: multi_face_dataset(s, (320, 320), 64, args.batch, shuffle=True))):
            ds = build(aug_samples)
            n1, t1 = _epoch(ds)
            n2, t2 = _epoch(ds)
            result["tfdata"][name] = {"images": n1, "epoch1_images_per_s": round(n1 / t1, 1),
                                      "cached_epoch_images_per_s": round(n2 / t2, 1)}
            rows.append({"stage": f"tf.data {name}, 1st epoch (decode)", "images": n1, "seconds": f"{t1:.2f}",
                         "images/s": f"{n1 / t1:.1f}"})
            rows.append({"stage": f"tf.data {name}, cached epoch", "images": n2, "seconds": f"{t2:.2f}",
                         "images/s": f"{n2 / t2:.1f}"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    md = (f"Data pipeline, {len(samples)} facemask photos x {args.variants} variants, "
          f"{os.cpu_count()} CPUs (load avg {os.getloadavg()[0]:.1f})\n\n"
          + table(rows, ["stage", "images", "seconds", "images/s"]))
    write("data", result, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
