"""Helpers shared by the benchmark scripts: stats, JSON + markdown table output."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Dict, Iterable, List, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stats_ms(samples: Sequence[float]) -> Dict[str, float]:
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median": round(float(np.median(a)), 2), "mean": round(float(a.mean()), 2),
            "p95": round(float(np.percentile(a, 95)), 2), "min": round(float(a.min()), 2)}


def machine() -> Dict[str, object]:
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()], "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def table(rows: List[Dict[str, object]], columns: Iterable[str]) -> str:
    cols = list(columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def write(name: str, result: Dict[str, object], markdown: str) -> str:
    out_dir = os.path.join(ROOT, "runs", "bench")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.json")
    result = dict(result, machine=machine())
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    with open(os.path.join(out_dir, f"{name}.md"), "w") as fh:
        fh.write(markdown + "\n")
    print(json.dumps(result, indent=2))
    print()
    print(markdown)
    return path
