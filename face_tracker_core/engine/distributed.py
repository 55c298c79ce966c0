"""Data-parallel training on Keras 3's distribution API (JAX backend), shared by every trainer.

The engine is Keras' own: a :class:`keras.distribution.DataParallel` over a 1-D ``DeviceMesh``
replicates the variables on every device and shards each global batch along its first axis; XLA
(GSPMD) inserts the gradient all-reduce. Several hosts join through
``jax.distributed.initialize`` (gRPC coordinator on host 0; gloo collectives on CPU, NCCL on GPUs),
each feeding only its own rows of the global batch (``jax.make_array_from_process_local_data``).
Because the loss is computed over the *global* batch, a run on N devices computes what one device
computes on the same global batch: batch-norm statistics and triplet mining span the whole batch.

Layout of one step's global batch of ``B`` rows with ``S`` data shards (``S`` = ``num_hosts`` by
default; ``S`` must be a multiple of ``num_hosts``):

* shard ``s`` (``B / S`` rows) comes from its own deterministic stream, seeded by
  :func:`shard_seed` ``(seed, S, s)``; ``S == 1`` keeps the single-device seed, so ``--devices N``
  on one host trains on exactly the batches of a one-device run;
* host ``h`` builds only its shards ``h*S/H ... (h+1)*S/H - 1`` (sharded, never duplicated), and
  its rows are split again over its ``devices`` local devices by the engine.

Only host 0 (the chief) writes the run folder; the other hosts write into a scratch folder that is
removed at the end. When training ends, host 0 writes ``replicas.json`` (rows per host and per
device, the largest difference between replicas' weights, whether the hosts agree). Decisions that depend on the wall clock (time budgets, learning rates set from
it) are made on host 0 and broadcast, so the replicas never drift apart.

On CPU, ``devices > 1`` splits the machine's cores into that many XLA host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count``), which must be set before JAX is imported:
:func:`prepare_process` does it, and refuses clearly when Keras already runs on another backend.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DataError
from .distributed_keras import broadcast_from_chief, host_sync_callback, replica_check_callback

log = logging.getLogger(__name__)

_FORCE_DEVICES = "--xla_force_host_platform_device_count"


@dataclasses.dataclass(frozen=True)
class DistConfig:
    """Where a training run's replicas live.

    Attributes:
        devices: accelerators (or CPU host devices) used on each host.
        coordinator: ``HOST:PORT`` of host 0's coordinator (several hosts only).
        num_hosts: processes taking part, one per host (or several on one host for tests).
        host_index: this process' rank, ``0 <= host_index < num_hosts``; host 0 writes the run folder.
        data_shards: independently seeded streams that make up a global batch (None: ``num_hosts``);
            the global batch depends on this number only, not on where the shards are built.
    """

    devices: int = 1
    coordinator: Optional[str] = None
    num_hosts: int = 1
    host_index: int = 0
    data_shards: Optional[int] = None

    @property
    def active(self) -> bool:
        """True when anything but plain single-device training is asked for."""
        return self.devices > 1 or self.num_hosts > 1 or (self.data_shards or 1) > 1

    @property
    def shards(self) -> int:
        return int(self.data_shards or self.num_hosts)

    def check(self) -> None:
        """Raises :class:`DataError` on an impossible layout."""
        if self.devices < 1 or self.num_hosts < 1:
            raise DataError(f"--devices and --num-hosts must be >= 1 (got {self.devices}, {self.num_hosts})")
        if not 0 <= self.host_index < self.num_hosts:
            raise DataError(f"--host-index must be in [0, {self.num_hosts}) (got {self.host_index})")
        if self.num_hosts > 1 and not self.coordinator:
            raise DataError("several hosts need --coordinator HOST:PORT (host 0's address, a free port)")
        if self.coordinator and (":" not in self.coordinator or not self.coordinator.rsplit(":", 1)[1].isdigit()):
            raise DataError(f"--coordinator must be HOST:PORT, got {self.coordinator!r}")
        if self.shards < 1 or self.shards % self.num_hosts:
            raise DataError(f"data_shards ({self.shards}) must be a positive multiple of --num-hosts "
                            f"({self.num_hosts})")

    @property
    def is_chief(self) -> bool:
        return self.host_index == 0


def add_cli_arguments(p) -> None:
    """The data-parallel options of ``face-tracker train ...`` (argparse parser ``p``)."""
    g = p.add_argument_group("data-parallel training (Keras distribution API on JAX; docs/distributed_training.md)")
    g.add_argument("--devices", type=int, default=1,
                   help="devices per host: GPUs, or on CPU that many XLA host devices (default 1: no distribution)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="host 0's address and a free port, the same on every host (several hosts)")
    g.add_argument("--num-hosts", type=int, default=1, help="hosts (processes) taking part")
    g.add_argument("--host-index", type=int, default=0, help="this host's rank; host 0 writes the run folder")
    g.add_argument("--data-shards", type=int, default=None,
                   help="independently seeded parts of each global batch (default: --num-hosts); a run with "
                        "the same value gives the same batches on any number of hosts")


def from_args(args) -> DistConfig:
    """:class:`DistConfig` from :func:`add_cli_arguments`' options (checked)."""
    cfg = DistConfig(devices=args.devices, coordinator=args.coordinator, num_hosts=args.num_hosts,
                     host_index=args.host_index, data_shards=args.data_shards)
    cfg.check()
    return cfg


def prepare_process(cfg: DistConfig) -> None:
    """Select Keras' JAX backend and the CPU device count; call before Keras or JAX is imported.

    Raises:
        DataError: Keras or JAX was already imported in a way that cannot be changed any more.
    """
    if not cfg.active:
        return
    backend = os.environ.get("KERAS_BACKEND")
    if "keras" in sys.modules:
        import keras

        backend = keras.backend.backend()
    if backend not in (None, "jax"):
        raise DataError(f"data-parallel training runs on Keras' JAX backend, but Keras uses {backend!r}: "
                        "start the process with KERAS_BACKEND=jax (or unset)")
    os.environ["KERAS_BACKEND"] = "jax"
    flags = os.environ.get("XLA_FLAGS", "")
    if _FORCE_DEVICES not in flags:
        if "jax" in sys.modules:
            import jax

            if jax.local_device_count() < cfg.devices:
                raise DataError(f"JAX is already imported with {jax.local_device_count()} device(s); set "
                                f"XLA_FLAGS={_FORCE_DEVICES}={cfg.devices} before starting the process")
        # Only the CPU platform reads it: on a GPU machine it adds CPU devices nobody uses.
        os.environ["XLA_FLAGS"] = f"{flags} {_FORCE_DEVICES}={cfg.devices}".strip()


def shard_seed(seed: int, shards: int, shard: int) -> int:
    """Seed of data shard ``shard`` of ``shards``; one shard keeps ``seed`` itself.

    A :class:`numpy.random.SeedSequence` of ``(seed, shards, shard)``, so neighbouring seeds or
    shard counts never give overlapping streams.
    """
    if shards == 1:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(shards), int(shard)]).generate_state(1)[0])


class Topology:
    """A started data-parallel layout (see :func:`start`); single-device runs get a passive one."""

    def __init__(self, cfg: DistConfig, devices: Sequence[Any] = ()):
        self.cfg, self.devices, self._scratch = cfg, list(devices), None
        self.path: Optional[str] = None  # the run folder (host 0) or scratch folder (others)
        self.global_rows = 0  # rows of a global batch (set by shard_size)
        self.replica_report: Optional[dict] = None
        self.active, self.is_chief = cfg.active, cfg.is_chief

    @property
    def replicas(self) -> int:
        """Devices over all hosts (1 when not distributed)."""
        return max(1, len(self.devices))

    def local_shards(self) -> List[int]:
        """The data shards this host builds."""
        per = self.cfg.shards // self.cfg.num_hosts
        return list(range(self.cfg.host_index * per, (self.cfg.host_index + 1) * per))

    def shard_size(self, global_units: int, rows_per_unit: int = 1) -> int:
        """Units (images, or people of a P x K batch) in one data shard; checks the split.

        Args:
            global_units: units in a global batch.
            rows_per_unit: batch rows per unit (K photos per person; 1 for images).

        Raises:
            DataError: the units do not split evenly into the shards, or a host's rows not over its devices.
        """
        shards, hosts, dev = self.cfg.shards, self.cfg.num_hosts, (self.cfg.devices if self.active else 1)
        if global_units % shards or (global_units * rows_per_unit // hosts) % dev:
            raise DataError(f"the global batch ({global_units} x {rows_per_unit} rows) must split evenly into "
                            f"{shards} data shard(s) and over {hosts} host(s) x {dev} device(s)")
        self.global_rows = global_units * rows_per_unit
        return global_units // shards

    def describe(self) -> dict:
        """What the run folder's config records about the layout."""
        return {"devices_per_host": self.cfg.devices, "num_hosts": self.cfg.num_hosts, "replicas": self.replicas,
                "data_shards": self.cfg.shards, "coordinator": self.cfg.coordinator}

    def run_dir(self, make: Union[str, Callable[[], str]]) -> str:
        """The chief's run folder (``make()``, or the path ``make``, created); other hosts get a scratch folder.

        Raises:
            DataError: a multi-host run would resume from host 0's backup, which the others lack.
        """
        if self.is_chief:
            path = make() if callable(make) else make
            os.makedirs(path, exist_ok=True)
            resuming = os.path.isdir(os.path.join(path, "backup"))
        else:
            self._scratch = tempfile.mkdtemp(prefix=f"ft-host{self.cfg.host_index}-")
            path, resuming = self._scratch, False
        if self.cfg.num_hosts > 1 and broadcast_from_chief(np.int32(resuming)):
            raise DataError(f"{path}: holds a resume backup; resuming a multi-host run is not supported "
                            "(every host would need it): use a new run name or remove backup/")
        self.path = path
        return path

    def validation_rows(self, n: int) -> slice:
        """This host's rows of an ``n``-row validation set, trimmed so every device gets as many."""
        per_host = (n // self.replicas) * (self.replicas // self.cfg.num_hosts) if self.active else n
        start = self.cfg.host_index * per_host
        return slice(start, start + per_host)

    def eval_batch(self, batch: int) -> int:
        """A per-host evaluation batch size that splits evenly over this host's devices."""
        d = self.cfg.devices if self.active else 1
        return max(d, -(-batch // d) * d)

    def elapsed_fn(self, t0: float) -> Optional[Callable[[], float]]:
        """Seconds since ``t0`` as host 0 measures them (a collective: every host calls it at the same
        points), for wall-clock schedules; None on one host (the caller's own clock)."""
        if self.cfg.num_hosts == 1:
            return None
        return lambda: float(broadcast_from_chief(np.float32(time.time() - t0)))

    def callbacks(self) -> list:
        """Callbacks to put after all others: hosts in step, replicas checked (none on one device)."""
        if not self.active:
            return []
        return [replica_check_callback(self)] + ([host_sync_callback()] if self.cfg.num_hosts > 1 else [])

    def close(self) -> None:
        """Leave the distribution (later models are local again) and drop the scratch folder."""
        if not self.active:
            return
        import keras

        keras.distribution.set_distribution(None)
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def start(cfg: Optional[DistConfig]) -> Topology:
    """Join the hosts (if several) and install a ``DataParallel`` distribution over the devices.

    Args:
        cfg: the layout; None or an inactive one: nothing happens (plain single-device training).

    Returns:
        The :class:`Topology`; call its :meth:`~Topology.close` when training ends.

    Raises:
        DataError: bad layout, wrong backend, too few devices, or the coordinator is unreachable.
    """
    cfg = cfg or DistConfig()
    cfg.check()
    if not cfg.active:
        return Topology(cfg)
    prepare_process(cfg)
    import jax

    if cfg.num_hosts > 1:
        try:
            jax.distributed.initialize(coordinator_address=cfg.coordinator, num_processes=cfg.num_hosts,
                                       process_id=cfg.host_index)
        except RuntimeError as exc:
            if "already initialized" not in str(exc) and "should only be called once" not in str(exc):
                raise DataError(f"cannot join the run at {cfg.coordinator} as host {cfg.host_index}: {exc}") from exc
    devices = _mesh_devices(jax, cfg)
    import keras

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    log.info("data-parallel over %d %s device(s): %d host(s) x %d, this is host %d; %d data shard(s)",
             len(devices), devices[0].platform, cfg.num_hosts, cfg.devices, cfg.host_index, cfg.shards)
    return Topology(cfg, devices)


def _mesh_devices(jax, cfg: DistConfig) -> list:
    """The first ``cfg.devices`` devices of every process, ordered by process then device id."""
    by_process: dict = {}
    for d in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(d.process_index, []).append(d)
    if len(by_process) != cfg.num_hosts:
        raise DataError(f"expected {cfg.num_hosts} host(s), the engine sees {len(by_process)}")
    short = {p: len(v) for p, v in by_process.items() if len(v) < cfg.devices}
    if short:
        raise DataError(f"--devices {cfg.devices}, but host(s) {sorted(short)} have only {min(short.values())} "
                        f"{jax.default_backend()} device(s)")
    return [d for p in sorted(by_process) for d in by_process[p][: cfg.devices]]


class ShardedStream:
    """The local part of every global batch: this host's data shards, concatenated.

    Wraps one stream per local shard (any object with ``get(epoch, i)``, ``steps`` and ``close()``,
    e.g. :class:`~face_tracker_core.train.detector_data.BatchStream`), each built by
    ``make(seed, rows)`` with its :func:`shard_seed`. With a single shard it is that stream.
    """

    def __init__(self, topo: Topology, seed: int, global_batch: int, make: Callable[[int, int], Any]):
        rows = topo.shard_size(global_batch)
        self.streams = [make(shard_seed(seed, topo.cfg.shards, s), rows) for s in topo.local_shards()]
        self.steps = self.streams[0].steps

    def get(self, epoch: int, i: int) -> Tuple[np.ndarray, ...]:
        parts = [s.get(epoch, i) for s in self.streams]
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(p) for p in zip(*parts))

    def close(self) -> None:
        for s in self.streams:
            s.close()


def sharded_dataset(topo: Topology, seed: int, units: int, rows_per_unit: int, make: Callable[[int, int], Any]):
    """This host's part of every global batch as one ``keras.utils.PyDataset``.

    Args:
        topo: the layout.
        seed: the run's seed (each shard's stream gets its :func:`shard_seed`).
        units: units per global batch (P people of a P x K batch).
        rows_per_unit: batch rows per unit (K).
        make: ``make(seed, units_per_shard)`` -> a PyDataset of ``(x, y)`` batches of one shard.
    """
    n = topo.shard_size(units, rows_per_unit)
    parts = [make(shard_seed(seed, topo.cfg.shards, s), n) for s in topo.local_shards()]
    if len(parts) == 1:
        return parts[0]
    import keras

    class _Concat(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)

        def __len__(self):
            return len(parts[0])

        def __getitem__(self, i):
            return tuple(np.concatenate(p) for p in zip(*(d[i] for d in parts)))

    return _Concat()
