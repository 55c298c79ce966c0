"""Data-parallel detector training: N steps on 1 vs 2 CPU devices / processes; throughput and agreement.

    nice -n 10 python benchmarks/bench_distributed.py                 # 20 steps of 16 images, 128 px
    nice -n 10 python benchmarks/bench_distributed.py --steps 50 --batch 32 --size 192

Writes ``runs/bench/distributed.json`` and ``runs/bench/distributed.md`` and prints the table.
Every configuration is a real ``python -m face_tracker_core.train.detector_trainer`` process (the
device count must be fixed before JAX starts) on Keras' JAX backend, from the same initial weights:

* ``1 device``: plain single-device training (no distribution);
* ``2 devices``: ``--devices 2``, one process (the CPU split into 2 XLA host devices);
* ``1 device, 2 shards``: one device trained on the global batches that 2 hosts build;
* ``2 processes``: ``--num-hosts 2`` on localhost (coordinator on 127.0.0.1), one device each;
* ``noise floor``: ``1 device`` again from initial weights perturbed by a relative 1e-6: how far
  float-level differences alone carry two runs apart after these steps (Adam amplifies them).

Throughput is taken from the second epoch (the first one compiles); agreement compares the final
weights with the single-device run on the same global batches (max |difference| and the relative
difference of the weight updates) and reads ``replicas.json`` (replicas' spread, hosts' agreement).
On a 2-core machine the devices share the same two cores, so no speed-up is expected here: the
numbers show what the engine costs, and that it computes the same thing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import ROOT, table, write  # noqa: E402

log = logging.getLogger("bench_distributed")
_EPOCH = re.compile(r"^\s*(\d+) face_tracker_core\.train\.detector_trainer: epoch (\d+):")


def _model(size: int) -> dict:
    return {"input_size": size, "stem": 8, "widths": [16, 24, 32, 48], "depths": [1, 1, 1, 1], "neck": 24}


def _run(args, tmp: str, name: str, dist: list, init: str, procs: int = 1) -> dict:
    """One configuration (``procs`` processes); returns the seconds of epoch 2 and the run folder."""
    model = json.dumps(_model(args.size))
    sets = [f"name={name}", f"runs_root={tmp}/runs", f"data_root={args.data}", "sets=[facemask, noface]",
            f"model={model}", f"augment={{size: {args.size}}}", f"batch_size={args.batch}",
            f"steps_per_epoch={args.steps}", "epochs=2", "warmup_epochs=0", "workers=0", "tensorboard=false",
            "jit_compile=true", "verbose=0", f"init_weights={init}", f"max_images={args.images}", "seed=0"]
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    env.pop("XLA_FLAGS", None)
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, format='%(relativeCreated)d %(name)s: "
            "%(message)s'); from face_tracker_core.train.detector_trainer import main; sys.exit(main(sys.argv[1:]))")
    port = _free_port()
    extra = [["--num-hosts", str(procs), "--host-index", str(i), "--coordinator", f"127.0.0.1:{port}"]
             if procs > 1 else [] for i in range(procs)]
    ps = [subprocess.Popen([sys.executable, "-c", code, "--set", *sets, *dist, *e], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for e in extra]
    outs = [p.communicate(timeout=args.timeout)[0] for p in ps]
    for p, out in zip(ps, outs):
        if p.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{out[-3000:]}")
    t = {int(m.group(2)): int(m.group(1)) for m in map(_EPOCH.match, outs[0].splitlines()) if m}
    return {"epoch2_s": (t[2] - t[1]) / 1000.0, "run_dir": os.path.join(tmp, "runs", "detect", name)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(run_dir: str) -> list:
    import keras

    import face_tracker_core.models.face_detector  # noqa: F401  (registers the custom layers)

    return [np.asarray(w) for w in keras.saving.load_model(os.path.join(run_dir, "last.keras"), compile=False)
            .get_weights()]


def _agreement(run_dir: str, ref_dir: str, w0: list) -> dict:
    a, b = _weights(ref_dir), _weights(run_dir)
    da = np.concatenate([(x - z).ravel() for x, z in zip(a, w0)])
    db = np.concatenate([(x - z).ravel() for x, z in zip(b, w0)])
    out = {"max_abs_diff": float(np.max(np.abs(da - db))),
           "rel_update_diff": float(np.linalg.norm(da - db) / max(np.linalg.norm(da), 1e-12))}
    rep = os.path.join(run_dir, "replicas.json")
    if os.path.isfile(rep):
        with open(rep) as fh:
            out["replicas"] = json.load(fh)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "detection"))
    p.add_argument("--steps", type=int, default=20, help="training steps per epoch (epoch 2 is timed)")
    p.add_argument("--batch", type=int, default=16, help="global batch (images)")
    p.add_argument("--size", type=int, default=128, help="input size, pixels")
    p.add_argument("--images", type=int, default=64, help="training photos drawn from")
    p.add_argument("--timeout", type=float, default=1200.0, help="per configuration, seconds")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not os.path.isdir(os.path.join(args.data, "facemask")):
        print(f"{args.data}: no detection data (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    import keras

    from face_tracker_core.models.face_detector import DetectorConfig, build_face_detector

    tmp = tempfile.mkdtemp(prefix="bench_distributed_")
    keras.utils.set_random_seed(0)
    init_model = build_face_detector(DetectorConfig.from_config(_model(args.size)))
    init = os.path.join(tmp, "init.keras")
    init_model.save(init)
    w0 = [np.asarray(w) for w in init_model.get_weights()]
    rng = np.random.default_rng(1)
    init_model.set_weights([w * (1 + 1e-6 * rng.standard_normal(w.shape)).astype(w.dtype) for w in w0])
    init_model.save(os.path.join(tmp, "init_perturbed.keras"))
    configs = [("1 device", "one", [], 1, None), ("2 devices (1 process)", "two", ["--devices", "2"], 1, "one"),
               ("1 device, 2 shards", "ref2", ["--data-shards", "2"], 1, None),
               ("2 processes (localhost)", "mp", [], 2, "ref2"),
               ("noise floor: 1 device, init x (1 + 1e-6 noise)", "noise", [], 1, "one")]
    rows, result = [], {"steps": args.steps, "global_batch": args.batch, "input_size": args.size, "configs": {}}
    for label, name, dist, procs, ref in configs:
        log.info("running %s", label)
        r = _run(args, tmp, name, dist, os.path.join(tmp, "init_perturbed.keras") if name == "noise" else init, procs)
        r["images_per_s"] = round(args.steps * args.batch / r["epoch2_s"], 1)
        if ref:
            r["agreement_with"] = ref
            r.update(_agreement(r["run_dir"], result["configs"][ref]["run_dir"], w0))
        result["configs"][name] = r
        rep = r.get("replicas", {})
        rows.append({"configuration": label, "epoch 2 (s)": round(r["epoch2_s"], 2), "images/s": r["images_per_s"],
                     "rows/device": rep.get("rows_per_device", args.batch),
                     "vs": {"one": "1 device", "ref2": "1 device, 2 shards"}.get(ref, ""),
                     "max abs diff": f"{r['max_abs_diff']:.1e}" if ref else "",
                     "rel. update diff": f"{r['rel_update_diff']:.1e}" if ref else "",
                     "replicas spread": rep.get("max_replica_spread", ""),
                     "hosts agree": rep.get("hosts_agree", "")})
    md = (f"Detector training, {args.steps} steps x {args.batch} images at {args.size} px (Keras on JAX-CPU, "
          f"{os.cpu_count()} cores)\n\n" + table(rows, rows[0].keys()))
    write("distributed", result, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
