"""Training pairs for reenactment: (landmark sketch, real frame) from a video of one person.

``prepare_dataset`` reads the video twice: pass 1 finds the face and its 68 landmarks in every
frame, pass 2 cuts one fixed square crop around the face out of each frame (a fixed crop keeps the
background still, so the generator learns it once instead of chasing a moving crop; it suits a
seated speaker, the face2face setting). Frames without a face are reported and skipped. The last
``holdout`` fraction of the frames read is the evaluation split, never seen in training.

On disk (a folder):

* ``pairs.npz``: ``jpeg`` (all crops JPEG-encoded and concatenated, ``uint8``), ``offsets``
  (``N + 1`` byte offsets into it), ``landmarks`` (``N x 68 x 2`` float32, crop pixels),
  ``frame_index`` (``N`` int32, index in the video), ``split`` (``N`` uint8: 0 train, 1 test);
  JPEG keeps 1,000 256 px crops at ~20 MB instead of ~200 MB raw;
* ``meta.json``: video, resolution, crop ``(x1, y1, side)`` in frame pixels, reference shape (mean
  training landmarks in crop pixels), sketch thickness, counts and skipped frames;
* ``preview.png``: a few sketch / frame pairs, for a look.

Sketches are not stored: they are re-drawn from the landmarks (:func:`~.sketch.render_sketch`),
which is exact and lets a model use another line width.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError
from ..types import BBox, Detection
from .sketch import crop_frame, crop_matrix, apply_affine, default_thickness, landmark_box, render_sketch

log = logging.getLogger(__name__)

PAIRS_FILE = "pairs.npz"
META_FILE = "meta.json"


def open_video(path: str) -> cv2.VideoCapture:
    """Open a video file for reading.

    Raises:
        DataError: missing file, or OpenCV cannot open it (corrupt / not a video).
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such video file")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{path}: cannot open as a video (corrupt file or unsupported format)")
    return cap


def pick_face(detections: Sequence[Detection], previous: Optional[BBox]) -> Optional[BBox]:
    """The face to follow: the one overlapping the previous pick, else the largest.

    Following the previous box keeps a poster face or a false detection in the background from
    stealing one frame from the speaker.
    """
    if not detections:
        return None
    if previous is not None:
        best = max(detections, key=lambda d: d.box.iou(previous))
        if best.box.iou(previous) > 0.3:
            return best.box
    return max(detections, key=lambda d: d.box.area * max(d.score, 1e-3)).box


def face_landmarks(predictor, bgr: np.ndarray, box: BBox, refine: int = 2) -> np.ndarray:
    """68 landmarks of the face in ``box``, made independent of the detector's box convention.

    dlib's predictor was trained on dlib-detector boxes; a detector whose boxes are taller or
    looser (our trained default includes the forehead) shifts and scales every point. Re-running
    the predictor ``refine`` times on the bounds of its own previous landmarks converges to the
    same landmarks whichever detector gave the first box (within ~1 % of the face width for Haar
    vs the trained detector on the talking-face clips).

    Args:
        predictor: ``LandmarkPredictor(68)``.
        bgr: ``(H, W, 3)`` frame.
        box: face box in pixels.
        refine: extra passes (0 = the detector's box only).

    Returns:
        ``(68, 2)`` float32 pixels.
    """
    lm = predictor.predict(bgr, box)
    for _ in range(int(refine)):
        lm = predictor.predict(bgr, BBox(*landmark_box(lm)))
    return lm


@dataclasses.dataclass
class PairDataset:
    """Decoded pairs.

    Attributes:
        frames: ``(N, R, R, 3)`` ``uint8`` BGR crops.
        landmarks: ``(N, 68, 2)`` float32 crop pixels.
        frame_index: ``(N,)`` index of each pair's frame in the video.
        split: ``(N,)`` 0 = train, 1 = held-out test.
        meta: contents of ``meta.json``.
    """

    frames: np.ndarray
    landmarks: np.ndarray
    frame_index: np.ndarray
    split: np.ndarray
    meta: Dict

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    def subset(self, which: str) -> "PairDataset":
        """``"train"`` or ``"test"`` pairs only."""
        sel = self.split == {"train": 0, "test": 1}[which]
        return PairDataset(self.frames[sel], self.landmarks[sel], self.frame_index[sel], self.split[sel], self.meta)

    def sketches(self, thickness: Optional[int] = None) -> np.ndarray:
        """``(N, R, R, 3)`` ``uint8`` sketches drawn from the landmarks."""
        t = self.meta.get("thickness") if thickness is None else thickness
        return np.stack([render_sketch(lm, self.resolution, t) for lm in self.landmarks]) if len(self) else \
            np.zeros((0, self.resolution, self.resolution, 3), np.uint8)

    def __len__(self) -> int:
        return int(len(self.frames))


def prepare_dataset(
    video: str,
    out_dir: str,
    resolution: int = 256,
    num: Optional[int] = None,
    holdout: float = 0.2,
    crop_scale: float = 2.0,
    detector="default",
    jpeg_quality: int = 95,
    landmark_predictor=None,
    refine: int = 2,
) -> Dict:
    """Turn a talking-face video into (sketch, frame) training pairs.

    Args:
        video: video file of one person (the target).
        out_dir: output folder (created).
        resolution: crop side in pixels (128 or 256 for the U-Net; any multiple of 2**depth works).
        num: read at most this many frames from the start (``None``: all).
        holdout: fraction of the frames read, at the END of the video, kept for evaluation.
        crop_scale: crop side as a multiple of the median landmark box side (2 = face + hair,
            neck and some background).
        detector: :class:`~face_tracker_core.infer.FaceDetector` or a backend name for
            :func:`~face_tracker_core.infer.make_detector`.
        jpeg_quality: quality of the stored crops (95: PSNR ~ 40 dB against the raw crop).
        landmark_predictor: a ``LandmarkPredictor(68)``; built when ``None``.
        refine: landmark refinement passes (:func:`face_landmarks`). The shipped model's data
            used 0 (with the Haar detector, whose boxes dlib already likes).

    Returns:
        The metadata written to ``meta.json``.

    Raises:
        DataError: unreadable/corrupt video, no decodable frame, no face in any frame, or a
            split left empty.
    """
    from ..infer import make_detector
    from ..infer.landmarks import LandmarkPredictor

    if not 0.0 <= holdout < 1.0:
        raise ValueError("holdout must be in [0, 1)")
    det = make_detector(detector) if isinstance(detector, str) else detector
    lmp = landmark_predictor or LandmarkPredictor(68)
    track = _track_landmarks(video, det, lmp, refine, num)
    landmarks, n_read = track["landmarks"], track["frames_read"]
    split_at = _split_frame(video, landmarks, n_read, holdout)
    crop = _video_crop([landmarks[i] for i in sorted(landmarks) if i < split_at], crop_scale)
    chunks, kept = _encode_crops(video, n_read, landmarks, crop, resolution, jpeg_quality)
    lms, split = _save_pairs(out_dir, chunks, kept, landmarks, crop, resolution, split_at)
    meta = {
        "video": os.path.abspath(video),
        "resolution": int(resolution),
        "frame_size": [int(track["width"]), int(track["height"])],
        "fps": track["fps"],
        "crop": list(crop),
        "crop_scale": float(crop_scale),
        "holdout": float(holdout),
        "split_frame": int(split_at),
        "frames_read": int(n_read),
        "pairs_train": int((split == 0).sum()),
        "pairs_test": int((split == 1).sum()),
        "skipped_frames": track["skipped"],
        "thickness": default_thickness(resolution),
        "reference_landmarks": lms[split == 0].mean(0).round(3).tolist(),
        "detector": getattr(det, "describe", lambda: str(det))(),
        "jpeg_quality": int(jpeg_quality),
        "landmark_refine": int(refine),
    }
    with open(os.path.join(out_dir, META_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    _write_preview(out_dir, chunks, lms, meta)
    log.info("%s: %d train + %d test pairs at %d px (crop %s) -> %s", video, meta["pairs_train"],
             meta["pairs_test"], resolution, crop, out_dir)
    return meta


def _track_landmarks(video: str, det, lmp, refine: int, num: Optional[int]) -> Dict:
    """First pass over the video: 68 landmarks of the followed face in every frame (full-frame pixels).

    Returns:
        ``{"landmarks": {frame index: (68, 2)}, "skipped": [frames without a face], "frames_read",
        "fps", "width", "height"}``.

    Raises:
        DataError: no frame decodes, or no face in any frame.
    """
    cap = open_video(video)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    width = height = 0
    landmarks: Dict[int, np.ndarray] = {}
    skipped: List[int] = []
    previous: Optional[BBox] = None
    n_read = 0
    try:
        while num is None or n_read < num:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            height, width = frame.shape[:2]
            box = pick_face(det.detect(frame), previous)
            if box is None:
                skipped.append(n_read)
            else:
                landmarks[n_read] = face_landmarks(lmp, frame, box, refine)
                previous = box
            n_read += 1
            if n_read % 200 == 0:
                log.info("%s: %d frames read, %d faces", video, n_read, len(landmarks))
    finally:
        cap.release()
    if n_read == 0:
        raise DataError(f"{video}: no frame could be decoded (corrupt or empty video)")
    if not landmarks:
        raise DataError(f"{video}: no face found in any of the {n_read} frames read "
                        f"(detector {getattr(det, 'describe', lambda: det)()})")
    if skipped:
        log.warning("%s: no face in %d of %d frames, skipped (first: %s)", video, len(skipped), n_read,
                    ", ".join(map(str, skipped[:10])))
    return {"landmarks": landmarks, "skipped": skipped, "frames_read": n_read, "fps": fps, "width": width,
            "height": height}


def _split_frame(video: str, landmarks: Dict[int, np.ndarray], n_read: int, holdout: float) -> int:
    """First held-out frame: the last ``holdout`` of the frames read are kept for evaluation.

    Raises:
        DataError: no face in the training part, or none in a non-empty held-out tail.
    """
    split_at = int(np.floor(n_read * (1.0 - holdout)))
    if not any(i < split_at for i in landmarks):
        raise DataError(f"{video}: no face in the training part (frames 0..{split_at - 1})")
    if holdout > 0 and not any(i >= split_at for i in landmarks):
        raise DataError(f"{video}: no face in the held-out tail (frames {split_at}..{n_read - 1})")
    return split_at


def _save_pairs(out_dir: str, chunks: List[bytes], kept: List[int], landmarks: Dict[int, np.ndarray],
                crop: Tuple[int, int, int], resolution: int, split_at: int) -> Tuple[np.ndarray, np.ndarray]:
    """Write ``pairs.npz`` (JPEG crops, landmarks in crop pixels, frame indices, split 0 train / 1 test).

    Returns:
        ``(landmarks (N, 68, 2) float32 in crop pixels, split (N,) uint8)``.
    """
    m = crop_matrix(crop, resolution)
    lms = np.stack([apply_affine(m, landmarks[i]) for i in kept]).astype(np.float32)
    split = np.array([0 if i < split_at else 1 for i in kept], np.uint8)
    offsets = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, PAIRS_FILE), jpeg=np.frombuffer(b"".join(chunks), np.uint8), offsets=offsets,
             landmarks=lms, frame_index=np.array(kept, np.int32), split=split)
    return lms, split


def _video_crop(train_landmarks: Sequence[np.ndarray], crop_scale: float) -> Tuple[int, int, int]:
    """One crop ``(x, y, side)`` in pixels for the whole video, from the training frames only (the
    test tail stays unseen): centred on the median landmark box, ``crop_scale`` times its side."""
    boxes = np.array([landmark_box(lm) for lm in train_landmarks])
    cx = float(np.median((boxes[:, 0] + boxes[:, 2]) / 2))
    cy = float(np.median((boxes[:, 1] + boxes[:, 3]) / 2))
    side = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))) * crop_scale
    side = int(round(max(side, 8)))
    return (int(round(cx - side / 2)), int(round(cy - side / 2)), side)


def _encode_crops(video: str, n_read: int, landmarks: Dict[int, np.ndarray], crop: Tuple[int, int, int],
                  resolution: int, jpeg_quality: int) -> Tuple[List[bytes], List[int]]:
    """Second pass: JPEG crops of the frames with a face.

    Returns:
        ``(jpeg bytes per kept frame, kept frame indices)``.
    """
    cap = open_video(video)
    chunks: List[bytes] = []
    kept: List[int] = []
    try:
        for i in range(n_read):
            ok, frame = cap.read()
            if not ok:
                log.warning("%s: frame %d decoded in pass 1 but not in pass 2; skipped", video, i)
                break
            if i not in landmarks:
                continue
            ok, buf = cv2.imencode(".jpg", crop_frame(frame, crop, resolution),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise DataError(f"{video}: frame {i}: JPEG encoding failed")
            chunks.append(buf.tobytes())
            kept.append(i)
    finally:
        cap.release()
    return chunks, kept


def _write_preview(out_dir: str, chunks: List[bytes], lms: np.ndarray, meta: Dict, n: int = 4) -> None:
    picks = np.linspace(0, len(chunks) - 1, min(n, len(chunks))).round().astype(int)
    cols = []
    for k in picks:
        frame = cv2.imdecode(np.frombuffer(chunks[k], np.uint8), cv2.IMREAD_COLOR)
        cols.append(np.vstack([render_sketch(lms[k], meta["resolution"], meta["thickness"]), frame]))
    cv2.imwrite(os.path.join(out_dir, "preview.png"), np.hstack(cols))


def load_pairs(path: str) -> PairDataset:
    """Load a folder written by :func:`prepare_dataset` (or its ``pairs.npz``).

    Raises:
        DataError: missing/corrupt files, or a crop that does not decode.
    """
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    npz_path, meta_path = os.path.join(folder, PAIRS_FILE), os.path.join(folder, META_FILE)
    for p in (npz_path, meta_path):
        if not os.path.isfile(p):
            raise DataError(f"{p}: missing (run 'face-tracker reenact prepare' first)")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        with np.load(npz_path) as z:
            data = {k: z[k] for k in ("jpeg", "offsets", "landmarks", "frame_index", "split")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{folder}: unreadable reenactment dataset ({exc})") from exc
    res = int(meta["resolution"])
    n = len(data["landmarks"])
    frames = np.empty((n, res, res, 3), np.uint8)
    off = data["offsets"]
    for k in range(n):
        img = cv2.imdecode(data["jpeg"][off[k]:off[k + 1]], cv2.IMREAD_COLOR)
        if img is None or img.shape != (res, res, 3):
            raise DataError(f"{npz_path}: pair {k} does not decode to a {res}x{res} image")
        frames[k] = img
    return PairDataset(frames, data["landmarks"].astype(np.float32), data["frame_index"], data["split"], meta)
