"""Fuzzing of the raw image decoder: any field combination gives a BGR image or ImageDecodeError."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.imaging import SUPPORTED_ENCODINGS, decode_raw

encodings = st.one_of(st.sampled_from(SUPPORTED_ENCODINGS + ("32FC1", "16SC1", "bayer_rggb8", "")),
                      st.text(max_size=12))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(-2, 40), width=st.integers(-2, 40), step=st.integers(-4, 200),
       encoding=encodings, size=st.integers(0, 6000), big=st.booleans())
def test_decode_never_crashes(height, width, step, encoding, size, big):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    try:
        out = decode_raw(data, height, width, encoding, step, big)
    except ImageDecodeError as exc:
        assert str(exc)
        return
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
