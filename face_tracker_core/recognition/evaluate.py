"""Verification and open-set identification benchmarks of several embedders on the same data.

Verification: LFW-style pairs of ``verify`` people (never trained on), 10 folds; identification:
20 ``identify`` people enrolled with 5 photos each, their other photos as probes, and 20 more
``identify`` people never enrolled, at the threshold calibrated for a target false-accept rate on
all impostor pairs of the ``verify`` people (as ``face-tracker gallery calibrate`` does).

A photo where the pipeline (our detector + retries + landmarks) finds no face is a wrong
answer in both: its pairs are wrong at every threshold, its probe is misnamed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..imaging import read_image
from ..types import BBox
from .dataset import FaceCache, Pair, list_identities, make_pairs, split_identities
from .metrics import roc_auc, tar_at_far, ten_fold_accuracy, threshold_for_far

log = logging.getLogger(__name__)


def _vector_cache_path(embedder, cache: FaceCache) -> str:
    import hashlib

    key = hashlib.sha1(f"{embedder.describe()}|{cache.path}".encode()).hexdigest()[:12]
    return os.path.join(os.path.dirname(cache.path), f"vectors-{embedder.name}-{key}.npz")


def embed_photos(embedder, cache: FaceCache, paths: Sequence[str], reuse: bool = True) -> Dict:
    """Main-face vector of each photo (``None`` when no face), and the time per face.

    Vectors are kept beside the face cache (keyed by the embedder's ``model_id`` and the face
    cache), so evaluating again with the same model and detector does not embed again; the
    reported time per face is then the one measured when they were computed.

    Returns:
        ``{"vectors": {path: (D,) or None}, "ms_per_face": float, "faces": int}``.
    """
    vpath = _vector_cache_path(embedder, cache)
    known: Dict[str, np.ndarray] = {}
    old_spent, old_faces = 0.0, 0
    if reuse and os.path.isfile(vpath):
        z = np.load(vpath)
        known = dict(zip([str(p) for p in z["paths"]], z["vectors"]))
        old_spent, old_faces = float(z["spent"]), int(z["faces"])
    vecs: Dict[str, Optional[np.ndarray]] = {}
    spent, faces = 0.0, 0
    for p in paths:
        e = cache.get(p)
        if not e.get("boxes"):
            vecs[p] = None
            continue
        if p in known:
            vecs[p] = known[p]
            continue
        img = read_image(p)
        box = BBox(*e["boxes"][0])
        t = time.perf_counter()
        v = embedder.embed(img, [box])  # full pipeline: landmarks, alignment, network
        spent += time.perf_counter() - t
        faces += 1
        vecs[p] = known[p] = v[0]
    if faces:
        # Temp file + rename: an interrupted run never leaves a truncated cache behind.
        os.makedirs(os.path.dirname(vpath) or ".", exist_ok=True)
        tmp = vpath + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, paths=np.array(list(known)), vectors=np.stack(list(known.values())),
                 spent=old_spent + spent, faces=old_faces + faces)
        os.replace(tmp, vpath)
    total_s, total_n = (spent, faces) if faces else (old_spent, old_faces)
    return {"vectors": vecs, "ms_per_face": 1000.0 * total_s / max(1, total_n), "faces": faces}


def pair_scores(vectors: Dict[str, Optional[np.ndarray]], pairs: Sequence[Pair]) -> np.ndarray:
    """Score of each pair in [0, 1]; NaN where a photo has no face."""
    out = np.full(len(pairs), np.nan)
    for i, p in enumerate(pairs):
        a, b = vectors.get(p.a), vectors.get(p.b)
        if a is not None and b is not None:
            out[i] = float(np.clip((1.0 + a @ b) / 2.0, 0.0, 1.0))
    return out


def impostor_scores(vectors: Dict[str, Optional[np.ndarray]], people: Dict[str, List[str]]) -> np.ndarray:
    """Scores of every cross-person photo pair of ``people`` (faces found only)."""
    vs, labs = [], []
    for k, (n, ps) in enumerate(sorted(people.items())):
        for p in ps:
            if vectors.get(p) is not None:
                vs.append(vectors[p])
                labs.append(k)
    if len(vs) < 2:
        return np.zeros(0)
    v, lab = np.stack(vs), np.array(labs)
    s = (1.0 + v @ v.T) / 2.0
    iu = np.triu_indices(len(lab), 1)
    return s[iu][(lab[:, None] != lab[None, :])[iu]]


def identification(embedder, cache: FaceCache, people: Dict[str, List[str]], enrolled: Sequence[str],
                   strangers: Sequence[str], threshold: float, shots: int = 5, workdir: Optional[str] = None,
                   match: str = "centroid", vectors: Optional[Dict[str, Optional[np.ndarray]]] = None) -> Dict:
    """Open-set test through a real gallery file.

    The first ``shots`` photos (sorted) of each ``enrolled`` person are enrolled (the main face of
    photos with several; photos with none are reported and skipped); every other photo of them
    must be named, every photo of the ``strangers`` must be ``unknown``. ``vectors`` (from
    :func:`embed_photos`) saves embedding the photos again.
    """
    from .enroll import EnrollIssue
    from .gallery import Gallery
    from .identify import UNKNOWN, Identifier

    # The gallery is only the means of the test: it lives in a temporary folder removed at the end
    # (it used to be left behind in the output folder, one per embedder).
    tmp = tempfile.mkdtemp(prefix="gallery-eval-", dir=workdir)
    try:
        gal = Gallery(os.path.join(tmp, "gallery.db"), model_id=embedder.model_id, dim=embedder.dim)
        issues: List[EnrollIssue] = []
        for n in enrolled:
            vecs, srcs = [], []
            for p in people[n][:shots]:
                e = cache.get(p)
                if not e.get("boxes"):
                    issues.append(EnrollIssue(p, "no face found"))
                    continue
                if len(e["boxes"]) > 1:
                    issues.append(EnrollIssue(p, f"{len(e['boxes'])} faces found, used the main one", used=True))
                vecs.append(vectors[p] if vectors and vectors.get(p) is not None
                            else embedder.embed(read_image(p), [BBox(*e["boxes"][0])])[0])
                srcs.append(os.path.basename(p))
            if vecs:
                gal.add(n, np.stack(vecs), sources=srcs)
        gal.set_threshold(threshold, source="evaluate")
        ident = Identifier(embedder, gal, match=match)

        def answer(p):
            e = cache.get(p)
            if not e.get("boxes"):
                return None
            v = vectors.get(p) if vectors else None
            if v is None:
                v = embedder.embed(read_image(p), [BBox(*e["boxes"][0])])[0]
            return ident.identify(v[None])[0][0]

        probes = [(n, p) for n in enrolled for p in people[n][shots:]]
        named = [answer(p) == n for n, p in probes]
        unknown = [answer(p) == UNKNOWN for n in strangers for p in people[n]]
        gal.close()
        return {"enrolled_people": len(enrolled), "enrolled_faces": int(len(ident._vecs)),
                "enrol_issues": [f"{os.path.basename(i.source)}: {i.reason}" for i in issues],
                "probes": len(probes), "named_correctly": float(np.mean(named)) if named else float("nan"),
                "stranger_photos": len(unknown), "strangers_unknown": float(np.mean(unknown)) if unknown else float("nan"),
                "threshold": threshold, "match": match}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate(root: str, embedder_names: Sequence[str], finder, pairs: Optional[Sequence[Pair]] = None,
             calib_far: float = 3e-4, tar_far: float = 1e-2, do_identification: bool = True,
             embedder_kw: Optional[Dict[str, Dict]] = None, cache_dir: Optional[str] = None,
             workdir: Optional[str] = None, match: str = "centroid") -> Dict:
    """Run every embedder on the same pairs/people; returns a JSON-able result dict."""
    from .embedders import make_embedder

    people = list_identities(root)
    split = split_identities(list(people))
    verify = {n: people[n] for n in split["verify"]}
    pairs = list(pairs) if pairs is not None else make_pairs(verify)
    ident_people = split["identify"]
    enrolled, strangers = ident_people[:20], ident_people[20:40]
    cache = FaceCache(finder, cache_dir)
    photos = sorted({p for pr in pairs for p in (pr.a, pr.b)} | {p for ps in verify.values() for p in ps}
                    | ({p for n in ident_people for p in people[n]} if do_identification else set()))
    t0 = time.time()
    cache.fill(photos)
    found = [bool(cache.get(p).get("boxes")) for p in photos]
    res: Dict = {"data": os.path.abspath(root), "finder": finder.describe(), "pairs": len(pairs),
                 "positive_pairs": int(sum(p.same for p in pairs)), "photos": len(photos),
                 "photos_without_face": int(len(found) - sum(found)),
                 "pairs_with_missing_face": 0, "detect_seconds": round(time.time() - t0, 1),
                 "split": {k: len(v) for k, v in split.items()}, "embedders": {}}
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    for name in embedder_names:
        log.info("evaluating %s", name)
        emb = make_embedder(name, **((embedder_kw or {}).get(name, {})))
        trained_on = set(getattr(emb, "card", {}).get("train_splits", ["train"]))
        if "verify" in trained_on:
            raise ValueError(f"{name}: its card says it was trained on the verification people")
        out = embed_photos(emb, cache, photos)
        vec = out["vectors"]
        s = pair_scores(vec, pairs)
        res["pairs_with_missing_face"] = int(np.isnan(s).sum())
        acc = ten_fold_accuracy(s, same, folds)
        tar, t_tar = tar_at_far(s, same, tar_far)
        ok = np.isfinite(s)
        cond = ten_fold_accuracy(s[ok], same[ok], folds[ok])
        imp = impostor_scores(vec, verify)
        thr = threshold_for_far(imp, calib_far)
        r = {"model_id": emb.model_id, "accuracy": acc["accuracy"], "accuracy_std": acc["std"],
             "accuracy_faces_found": cond["accuracy"], "roc_auc": roc_auc(s, same),
             f"tar_at_far_{tar_far:g}": tar, "ms_per_face": out["ms_per_face"],
             "calibrated_threshold": thr, "calibration_far": calib_far, "calibration_impostor_pairs": int(len(imp))}
        if do_identification and "identify" in trained_on:
            # Its open-set answers would be about people it has learned: not a held-out result.
            log.warning("%s: trained on the open-set test people; identification not evaluated", name)
            r["identification_skipped"] = "trained on the identify people"
        elif do_identification:
            r["identification"] = identification(emb, cache, people, enrolled, strangers, thr, workdir=workdir,
                                                 match=match, vectors=vec)
        res["embedders"][name] = r
        log.info("%s: %s", name, {k: v for k, v in r.items() if not isinstance(v, dict)})
    cache.save()
    return res


def markdown_table(res: Dict, tar_far: float = 1e-2) -> str:
    """The headline numbers of :func:`evaluate` as a markdown table."""
    key = f"tar_at_far_{tar_far:g}"
    lines = [f"pairs: {res['pairs']} ({res['positive_pairs']} genuine), photos without a face: "
             f"{res['photos_without_face']}/{res['photos']}, pairs with a missing face: "
             f"{res['pairs_with_missing_face']}, finder: {res['finder']}", "",
             f"| embedder | 10-fold acc | acc (faces found) | ROC AUC | TAR@FAR={tar_far:g} | ms/face | "
             "threshold | named (enrolled) | unknown (strangers) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["embedders"].items():
        idn = r.get("identification", {})
        if "identification_skipped" in r:
            named = unknown = "– (trained on them)"
        else:
            named = f"{idn.get('named_correctly', float('nan')):.3f}"
            unknown = f"{idn.get('strangers_unknown', float('nan')):.3f}"
        lines.append(f"| {name} | {r['accuracy']:.4f} ± {r['accuracy_std']:.3f} | {r['accuracy_faces_found']:.4f} | "
                     f"{r['roc_auc']:.4f} | {r[key]:.4f} | {r['ms_per_face']:.1f} | {r['calibrated_threshold']:.4f} | "
                     f"{named} | {unknown} |")
    return "\n".join(lines)
