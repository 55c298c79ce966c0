"""Face recognition: embedders, enrolment gallery, open-set identification per track.

Typical use (what the tracker node does)::

    from face_tracker_core.recognition import Gallery, Identifier, TrackIdentifier, make_embedder

    emb = make_embedder("dlib")                         # or "facenet", "siamese"
    gallery = Gallery("people.db", model_id=emb.model_id, dim=emb.dim)
    per_track = TrackIdentifier(Identifier(emb, gallery), refresh_s=2.0)
    tracks = per_track.update(bgr, tracks, now=stamp_seconds)   # fills identity/identity_score

Everything here is framework-free (no rclpy); TensorFlow/Keras is imported only by the
``facenet``/``siamese`` embedders and training.
"""

from .embedders import Embedder, available_embedders, make_embedder, similarity
from .gallery import Gallery, GalleryError, GalleryLockedError, GalleryModelError
from .identify import UNKNOWN, Identifier, TrackIdentifier

__all__ = ["Embedder", "make_embedder", "available_embedders", "similarity", "Gallery", "GalleryError",
           "GalleryLockedError", "GalleryModelError", "Identifier", "TrackIdentifier", "UNKNOWN"]
