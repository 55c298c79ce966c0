"""README command (1): the demo finds the embedded face in >= 90 % of frames and writes its outputs."""

import json
import os
import subprocess
import sys


def test_demo_on_the_embedded_camera(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(int(os.environ.get("ROS_DOMAIN_ID", "120")) % 100 + 130))
    res = subprocess.run([sys.executable, "-m", "face_tracker_ros.demo", "--duration", "120", "--frames", "30",
                          "--out", str(out),
                          "--min-face-ratio", "0.9"], env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] >= 30 and summary["face_ratio"] >= 0.9, summary
    assert summary["track_ids"], "the demo's face never got a track id"
    assert (out / "annotated.png").stat().st_size > 10_000 and (out / "annotated.mp4").stat().st_size > 10_000
    # The snapshot shows the tracked face: its box is drawn in the colour of its track id.
    import cv2
    import numpy as np

    from face_tracker_core.draw import _colour

    snap = cv2.imread(str(out / "annotated.png"))
    colour = np.array(_colour(sorted(summary["track_ids"])[0]), np.uint8)
    assert (snap == colour).all(axis=2).sum() > 200, "annotated.png shows no tracked face"
    assert "frames with a face" in res.stderr + res.stdout
