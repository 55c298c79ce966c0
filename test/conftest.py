"""Shared test fixtures: paths to ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("FACE_TRACKER_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def shared_path(*parts: str) -> str:
    """Path under ../shared/data; skips the calling test when it does not exist."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared data not available: {path} (set FACE_TRACKER_DATA)")
    return path


@pytest.fixture
def shared_data():
    """Callable fixture: ``shared_data('detection', 'facemask')`` -> path or skip."""
    return shared_path
