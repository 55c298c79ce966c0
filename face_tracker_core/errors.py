"""Exceptions with messages meant for people (CLI prints them, nodes log them)."""


class FaceTrackerError(Exception):
    """Base class of every error the core raises on purpose."""


class ImageDecodeError(FaceTrackerError, ValueError):
    """A raw image buffer could not be turned into a BGR array (bad size, step, encoding)."""


class ModelLoadError(FaceTrackerError, RuntimeError):
    """A model/weights file is missing, truncated or of the wrong architecture."""


class DataError(FaceTrackerError, ValueError):
    """A dataset file (annotation, attribute list, video) is malformed."""
