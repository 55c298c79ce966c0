"""Box maths (face_tracker_core.boxes) and the layering rule that inference never imports evaluation."""

from __future__ import annotations

import ast
import os

import numpy as np

from face_tracker_core.boxes import grow, iou_matrix, nms, postprocess
from face_tracker_core.types import BBox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "face_tracker_core")


def _module_imports(path: str, module: str):
    """Dotted face_tracker_core modules imported anywhere in ``path`` (also inside functions)."""
    pkg = module.rsplit(".", 1)[0] if not path.endswith("__init__.py") else module
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("face_tracker_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("face_tracker_core"):
                out.add(target)
                out |= {f"{target}.{a.name}" for a in node.names}
    return out


def _all_modules():
    mods = {}
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                mods[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return mods


def test_infer_imports_nothing_from_eval():
    """No module of ``infer`` reaches ``eval``, directly or through other modules of the package."""
    mods = _all_modules()
    start = [m for m in mods if m.startswith("face_tracker_core.infer")]
    seen, todo, via = set(start), list(start), {}
    while todo:
        m = todo.pop()
        for dep in _module_imports(mods[m], m):
            if dep in mods and dep not in seen:
                seen.add(dep)
                via[dep] = m
                todo.append(dep)
    bad = sorted(m for m in seen if m.startswith("face_tracker_core.eval"))
    chains = []
    for m in bad:
        chain = [m]
        while chain[-1] in via:
            chain.append(via[chain[-1]])
        chains.append(" <- ".join(chain))
    assert not bad, "infer reaches eval: " + "; ".join(chains)


def test_iou_matrix_and_bbox_iou_agree():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (20, 2))
    wh = rng.uniform(-5, 40, (20, 2))        # some empty boxes too
    boxes = np.hstack([xy, xy + wh])
    m = iou_matrix(boxes, boxes)
    for i in range(len(boxes)):
        for j in range(len(boxes)):
            assert m[i, j] == BBox(*boxes[i]).iou(BBox(*boxes[j]))
    assert np.all((m >= 0) & (m <= 1))
    assert iou_matrix(np.zeros((0, 4)), boxes).shape == (0, 20)
    assert iou_matrix([0, 0, 10, 10], [5, 0, 15, 10])[0, 0] == 50 / 150


def test_grow_keeps_centres():
    b = np.array([[10.0, 20.0, 30.0, 60.0]])
    g = grow(b, 0.5)
    np.testing.assert_allclose(g, [[0.0, 0.0, 40.0, 80.0]])


def test_nms_and_postprocess():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.9])
    assert nms(boxes, scores, 0.45).tolist() == [0, 2]          # ties keep the input order
    assert nms(boxes, scores, 0.45, max_out=1).tolist() == [0]
    raw = np.column_stack([np.log(scores / (1 - scores)), boxes])
    b, s = postprocess(raw, score_threshold=0.75, iou_threshold=0.45)
    np.testing.assert_allclose(b, boxes[[0]])
    np.testing.assert_allclose(s, [0.9])
    b, s = postprocess(raw, score_threshold=0.5, iou_threshold=0.45, pre_nms=2)
    assert len(b) == 1                                           # only the two 0.9 copies enter NMS
