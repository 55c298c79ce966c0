#!/usr/bin/env python3
"""Recognition speed: ms per face of each embedder (single face and batches, alignment included),
and gallery matching time versus gallery size.

Writes ``runs/bench/recognition.json`` and prints a markdown table. Verification *accuracy* is
``face-tracker eval embedder`` (it needs the held-out data); this script needs no data set:
it films the embedded astronaut portrait with the synthetic camera.

    python benchmarks/bench_recognition.py [--embedders dlib,facenet,siamese] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from face_tracker_core.recognition import Gallery, Identifier, make_embedder  # noqa: E402
from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_core.types import BBox  # noqa: E402


def _ms(fn, repeats: int) -> float:
    fn()  # warm-up (graph tracing, caches)
    t = []
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        t.append(time.perf_counter() - s)
    return 1000.0 * float(np.median(t))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedders", default="dlib,facenet,siamese")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=os.path.join("runs", "bench", "recognition.json"))
    args = ap.parse_args()
    cam = SyntheticCamera(640, 480)
    frame = cam.render(0.0)
    box = BBox(*cam.face_in_frame(0.0))
    rows = []
    for name in [e for e in args.embedders.split(",") if e]:
        emb = make_embedder(name)
        one = _ms(lambda: emb.embed(frame, [box]), args.repeats)
        eight = _ms(lambda: emb.embed(frame, [box] * 8), max(3, args.repeats // 4)) / 8
        crops = emb.aligner.align(frame, [box] * 8)
        net = _ms(lambda: emb.embed_aligned(crops), max(3, args.repeats // 4)) / 8
        rows.append({"embedder": name, "model_id": emb.model_id, "dim": emb.dim,
                     "ms_per_face_single": round(one, 2), "ms_per_face_batch8": round(eight, 2),
                     "ms_per_face_network_only_batch8": round(net, 2)})
    # Matching cost: dot products against every enrolled vector, 5 per person.
    match = []
    with tempfile.TemporaryDirectory() as tmp:
        emb = make_embedder("dlib")
        for people in (20, 200, 2000):
            g = Gallery(os.path.join(tmp, f"g{people}.db"), model_id=emb.model_id, dim=emb.dim)
            rng = np.random.default_rng(0)
            for i in range(people):
                v = rng.normal(size=(5, emb.dim)).astype(np.float32)
                g.add(f"p{i}", v / np.linalg.norm(v, axis=1, keepdims=True))
            ident = Identifier(emb, g)
            q = rng.normal(size=(4, emb.dim)).astype(np.float32)
            t_load = _ms(ident.reload, 3)
            match.append({"people": people, "ms_identify_4_faces": round(_ms(lambda: ident.identify(q), args.repeats), 3),
                          "ms_reload": round(t_load, 1)})
            g.close()
    res = {"machine": platform.platform(), "cpus": os.cpu_count(), "embedders": rows, "gallery": match}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print("| embedder | ms/face (1 face) | ms/face (8 faces) | network only (8) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['embedder']} | {r['ms_per_face_single']} | {r['ms_per_face_batch8']} | "
              f"{r['ms_per_face_network_only_batch8']} |")
    print()
    print("| gallery people | identify 4 faces (ms) | reload (ms) |")
    print("|---|---|---|")
    for m in match:
        print(f"| {m['people']} | {m['ms_identify_4_faces']} | {m['ms_reload']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
