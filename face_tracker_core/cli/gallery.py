"""``face-tracker gallery ...``: create, enrol, list, rename, delete, export/import, calibrate and
query the enrolment gallery (one SQLite file, see :mod:`face_tracker_core.recognition.gallery`).

Examples::

    face-tracker gallery add people.db alice alice1.jpg alice2.jpg
    face-tracker gallery add-folder people.db photos/          # one sub-folder per person
    face-tracker gallery add people.db bob --video bob.mp4
    face-tracker gallery add people.db bob --camera 0 --frames 20
    face-tracker gallery list people.db
    face-tracker gallery calibrate people.db --data ../shared/data/identity/celeba --far 1e-3
    face-tracker gallery identify people.db group.jpg
"""

from __future__ import annotations

import argparse
import json
import logging
import os

COMMAND = ("gallery",)
HELP = "manage the face gallery (enrol, list, rename, delete, export/import, calibrate, identify)"
log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", help="gallery file (SQLite)")
    p.add_argument("--embedder", default=None,
                   help="embedder (dlib, facenet, siamese); default: the gallery's own, else dlib")
    p.add_argument("--embedder-model", default=None, help="weights file for facenet/siamese")
    p.add_argument("--detector", default="default", help="detector backend")


def _several(args: argparse.Namespace) -> str:
    return "main" if args.main_face else "match" if args.match_face else "reject"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="gallery_cmd", metavar="ACTION")
    sub.required = True
    a = sub.add_parser("add", help="enrol one person from photos, a video or a camera")
    _common(a)
    a.add_argument("name", help="person name")
    a.add_argument("images", nargs="*", help="photo files (exactly one face each)")
    a.add_argument("--video", default=None, help="video file")
    a.add_argument("--camera", default=None, help="camera index or device (e.g. 0 or /dev/video0)")
    a.add_argument("--frames", type=int, default=20, help="faces to collect from a video/camera")
    a.add_argument("--every", type=int, default=5, help="use every n-th video frame")
    several = a.add_mutually_exclusive_group()
    several.add_argument("--main-face", action="store_true",
                         help="use the main (most confident) face of photos with several faces, with a warning")
    several.add_argument("--match-face", action="store_true",
                         help="in photos with several faces use the one that clearly matches the person's one-face "
                              "photos (bystanders and unclear photos are skipped), with a warning")
    a.add_argument("--store-images", action="store_true", help="also keep the aligned face crops")
    f = sub.add_parser("add-folder", help="enrol every sub-folder of a folder as one person")
    _common(f)
    f.add_argument("root")
    several = f.add_mutually_exclusive_group()
    several.add_argument("--main-face", action="store_true", help="as for 'add'")
    several.add_argument("--match-face", action="store_true", help="as for 'add'")
    f.add_argument("--store-images", action="store_true")
    ls = sub.add_parser("list", help="people and their vector counts")
    ls.add_argument("db")
    ls.add_argument("--json", action="store_true")
    info = sub.add_parser("info", help="model, threshold, counts")
    info.add_argument("db")
    rn = sub.add_parser("rename", help="rename a person")
    rn.add_argument("db")
    rn.add_argument("old")
    rn.add_argument("new")
    de = sub.add_parser("delete", help="delete a person and every row of theirs")
    de.add_argument("db")
    de.add_argument("name")
    ex = sub.add_parser("export", help="write a JSON export")
    ex.add_argument("db")
    ex.add_argument("out")
    ex.add_argument("--with-images", action="store_true")
    im = sub.add_parser("import", help="merge a JSON export")
    im.add_argument("db")
    im.add_argument("src")
    im.add_argument("--replace", action="store_true", help="people in the export replace same-named ones")
    ca = sub.add_parser("calibrate", help="pick the threshold for a target false-accept rate from held-out pairs")
    _common(ca)
    ca.add_argument("--far", type=float, default=3e-4,
                    help="target false-accept rate per comparison (a stranger meets every enrolled person, "
                         "so false names grow with the gallery size: 3e-4 kept them under 5 %% for 20 people)")
    ca.add_argument("--pairs", default=None, help="pairs CSV (fold,same,a,b); impostor pairs set the threshold")
    ca.add_argument("--data", default=None, help="folder per person: all cross-person pairs of its held-out "
                                                  "'verify' people (or of every person with --all-people)")
    ca.add_argument("--all-people", action="store_true")
    idf = sub.add_parser("identify", help="name the faces in photos")
    _common(idf)
    idf.add_argument("images", nargs="+")
    idf.add_argument("--threshold", type=float, default=None)


def _embedder(args, gal):
    from ..recognition.embedders import make_embedder

    name = args.embedder
    if name is None:
        mid = gal.model_id or ""
        name = "dlib" if mid.startswith("dlib") or not mid else mid.split(":")[0]
    kw = {"model_path": args.embedder_model} if args.embedder_model else {}
    return make_embedder(name, **kw)


def run(args: argparse.Namespace) -> int:
    from ..recognition.gallery import Gallery

    cmd = args.gallery_cmd
    if cmd in ("list", "info", "rename", "delete", "export"):
        with Gallery(args.db, create=False) as gal:
            if cmd == "list":
                people = gal.people()
                if args.json:
                    print(json.dumps([p.__dict__ for p in people]))
                else:
                    for p in people:
                        print(f"{p.name}\t{p.count}")
            elif cmd == "info":
                print(json.dumps({"path": gal.path, "model_id": gal.model_id, "dim": gal.dim,
                                  "threshold": gal.threshold, "threshold_info": gal.threshold_info(),
                                  "people": len(gal), "vectors": len(gal.vectors()[0]),
                                  "integrity": gal.integrity_check()}, indent=1))
            elif cmd == "rename":
                gal.rename(args.old, args.new)
                log.info("renamed %s -> %s", args.old, args.new)
            elif cmd == "delete":
                try:
                    n = gal.delete(args.name)
                except KeyError as exc:
                    log.error("%s", exc.args[0])
                    return 1
                log.info("deleted %s (%d vectors)", args.name, n)
            else:
                log.info("exported %d people to %s", gal.export(args.out, args.with_images), args.out)
        return 0
    if cmd == "import":
        with Gallery(args.db) as gal:
            log.info("imported %d vectors", gal.import_(args.src, args.replace))
        return 0

    from ..recognition.faces import FaceFinder

    with Gallery(args.db, create=cmd in ("add", "add-folder")) as gal:
        emb = _embedder(args, gal)
        gal.bind_model(emb.model_id, emb.dim)
        if cmd == "add":
            return _add(args, gal, emb)
        if cmd == "add-folder":
            from ..recognition.enroll import enroll_folder

            reports = enroll_folder(emb, gal, args.root, FaceFinder(args.detector),
                                    _several(args), args.store_images)
            for r in reports:
                print(r.summary())
            return 0 if all(r.added for r in reports) else 1
        if cmd == "calibrate":
            return _calibrate(args, gal, emb)
        if cmd == "identify":
            return _identify(args, gal, emb)
    raise AssertionError(cmd)


def _add(args, gal, emb) -> int:
    from ..recognition.enroll import enroll_frames, enroll_images
    from ..recognition.faces import FaceFinder

    sources = sum(bool(x) for x in (args.images, args.video, args.camera is not None))
    if sources != 1:
        raise SystemExit("give photos, --video or --camera (exactly one kind)")
    if args.images:
        rep = enroll_images(emb, gal, args.name, args.images, FaceFinder(args.detector),
                            _several(args), args.store_images)
    else:
        from ..sources import VideoCaptureSource

        src = args.video if args.video else (int(args.camera) if str(args.camera).isdigit() else args.camera)
        with VideoCaptureSource(src) as cap:
            rep = enroll_frames(emb, gal, args.name, cap, source=os.path.basename(str(src)), every=args.every,
                                max_faces=args.frames, finder=FaceFinder(args.detector, retry=False),
                                store_images=args.store_images)
    for i in rep.issues:
        print(f"{'warning' if i.used else 'skipped'}: {i.source}: {i.reason}")
    print(rep.summary())
    return 0 if rep.added else 1


def _calibrate(args, gal, emb) -> int:
    import numpy as np

    from ..recognition.dataset import FaceCache, list_identities, load_pairs, split_identities
    from ..recognition.evaluate import embed_photos, impostor_scores, pair_scores
    from ..recognition.faces import FaceFinder
    from ..recognition.metrics import threshold_for_far

    cache = FaceCache(FaceFinder(args.detector))
    if args.pairs:
        pairs = load_pairs(args.pairs)
        photos = sorted({x for p in pairs for x in (p.a, p.b)})
        vec = embed_photos(emb, cache, photos)["vectors"]
        s = pair_scores(vec, pairs)
        same = np.array([p.same for p in pairs])
        imp, gen = s[~same], s[same]
        source = args.pairs
    elif args.data:
        people = list_identities(args.data)
        names = list(people) if args.all_people else split_identities(list(people))["verify"]
        sel = {n: people[n] for n in names}
        vec = embed_photos(emb, cache, sorted(p for ps in sel.values() for p in ps))["vectors"]
        imp = impostor_scores(vec, sel)
        same_scores = []  # genuine pairs, to report the accept rate at the chosen threshold
        for ps in sel.values():
            vs = [vec[p] for p in ps if vec.get(p) is not None]
            for i in range(len(vs)):
                for j in range(i + 1, len(vs)):
                    same_scores.append((1 + vs[i] @ vs[j]) / 2)
        gen = np.array(same_scores)
        source = f"{args.data} ({'all' if args.all_people else 'verify split'}: {len(names)} people)"
    else:
        raise SystemExit("calibrate needs --pairs or --data")
    cache.save()
    imp = imp[np.isfinite(imp)]
    if imp.size < 10:
        raise SystemExit("too few impostor pairs with faces to calibrate")
    if args.far * imp.size < 1:
        log.warning("FAR %g needs more than %d impostor pairs to be measured; threshold is the highest impostor score",
                    args.far, imp.size)
    t = threshold_for_far(imp, args.far)
    tar = float(np.mean(gen[np.isfinite(gen)] >= t)) if gen.size else float("nan")
    gal.set_threshold(t, far=args.far, source=source, impostor_pairs=int(imp.size), genuine_pairs=int(gen.size),
                      tar=tar, model_id=emb.model_id)
    print(json.dumps({"threshold": t, "far": args.far, "tar": tar, "impostor_pairs": int(imp.size),
                      "genuine_pairs": int(gen.size)}))
    return 0


def _identify(args, gal, emb) -> int:
    from ..imaging import read_image
    from ..recognition.faces import FaceFinder
    from ..recognition.identify import Identifier

    ident = Identifier(emb, gal, threshold=args.threshold)
    finder = FaceFinder(args.detector)
    failures = 0
    for path in args.images:
        try:
            img = read_image(path)
        except Exception as exc:
            log.error("%s", exc)
            failures += 1
            continue
        dets = finder.find(img).detections
        names = ident.identify_faces(img, [d.box for d in dets]) if dets else []
        print(json.dumps({"image": path, "faces": [
            {"box": [round(v, 1) for v in d.box.as_xyxy()], "name": n, "score": round(s, 4)}
            for d, (n, s) in zip(dets, names)]}))
    return 1 if failures else 0
