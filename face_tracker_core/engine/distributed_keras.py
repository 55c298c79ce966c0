"""Keras-side pieces of data-parallel training (see :mod:`face_tracker_core.engine.distributed`).

* :func:`predict` / :func:`predict_on_batch`: validation predictions that also work while a
  distribution is installed;
* :func:`host_sync_callback`: host 0's decision to stop training on every host;
* :func:`replica_check_callback`: at the end of training, checks that every replica holds the same
  weights and writes ``replicas.json`` (layout, rows per host/device, agreement) to the run folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import weakref
from typing import Any, Iterator

import numpy as np

log = logging.getLogger(__name__)


def broadcast_from_chief(value: np.ndarray) -> Any:
    """Host 0's ``value`` on every host (a collective: every host must call it)."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(value))).item()


def host_sync_callback():
    """A callback (put after all others) that makes host 0's decision to stop everyone's.

    Each host's callbacks see their own clock, so a time budget could stop one host an epoch
    before the others, which would then wait forever in the next all-reduce. (Schedules computed
    from the clock take host 0's: :meth:`~face_tracker_core.engine.distributed.Topology.elapsed_fn`.)
    """
    import keras

    class HostSync(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = bool(broadcast_from_chief(np.int32(bool(self.model.stop_training))))

    return HostSync()


def replica_check_callback(topo):
    """A callback that measures, when training ends, how far the replicas' weights are apart.

    Within a host it compares every device's copy of every variable; across hosts it compares a
    digest of each host's weights. Host 0 writes the result to ``<run folder>/replicas.json`` and
    ``topo.replica_report`` holds it on every host.
    """
    import keras

    class ReplicaCheck(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            spread, digest = 0.0, hashlib.sha1()
            for v in self.model.variables:
                shards = [np.asarray(s.data) for s in v.value.addressable_shards]
                if shards[0].size:
                    spread = max([spread] + [float(np.max(np.abs(s - shards[0]))) for s in shards[1:]])
                digest.update(np.ascontiguousarray(shards[0]).tobytes())
            mine = np.frombuffer(digest.digest()[:8], np.int64)
            agree = True
            if topo.cfg.num_hosts > 1:
                from jax.experimental import multihost_utils

                every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1)
                agree = bool(np.all(every == every[0]))
            rows = topo.global_rows
            layout = keras.distribution.distribution().get_data_layout((rows,)).backend_layout
            topo.replica_report = {
                "replicas": topo.replicas, "hosts": topo.cfg.num_hosts, "devices_per_host": topo.cfg.devices,
                "data_shards": topo.cfg.shards, "global_batch_rows": rows, "rows_per_host": rows // topo.cfg.num_hosts,
                "rows_per_device": int(layout.shard_shape((rows,))[0]), "max_replica_spread": spread,
                "hosts_agree": agree}
            log.info("replicas after training: %s", topo.replica_report)
            if topo.is_chief and topo.path:
                with open(os.path.join(topo.path, "replicas.json"), "w", encoding="utf-8") as fh:
                    json.dump(topo.replica_report, fh, indent=1)

    return ReplicaCheck()


@contextlib.contextmanager
def _no_distribution() -> Iterator[None]:
    import keras

    saved = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(saved)


_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _local_twin(model):
    """A copy of ``model`` on this host's default device, with ``model``'s current weights."""
    twin = _TWINS.get(model)
    if twin is None:
        # Building layers draws default seeds from Python's RNG, which also orders the epochs' batches
        # (fit's shuffle): keep both RNG states so the twin changes nothing about training.
        py_state, np_state = random.getstate(), np.random.get_state()
        # from_config, not clone_model: that one also recompiles, which needs the loss registered
        twin = type(model).from_config(model.get_config())
        random.setstate(py_state)
        np.random.set_state(np_state)
        _TWINS[model] = twin
    twin.set_weights(model.get_weights())
    return twin


def predict(model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """``model.predict(x)`` that also works while a distribution is installed.

    Replicated outputs of several hosts cannot be read back on one host, and a last partial batch
    may not split over the devices: under a distribution the prediction runs on a local copy of the
    model (same weights) on this host alone. Every host computes the same numbers.
    """
    import keras

    if keras.distribution.distribution() is None:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    with _no_distribution():
        return np.asarray(_local_twin(model).predict(x, batch_size=batch_size, verbose=0))


def predict_on_batch(model, x: np.ndarray) -> np.ndarray:
    """``model.predict_on_batch(x)`` that also works under a distribution (see :func:`predict`)."""
    import keras

    if keras.distribution.distribution() is None:
        return np.asarray(model.predict_on_batch(x))
    return predict(model, x, len(x))
