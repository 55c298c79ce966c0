"""The training loop every model family runs: :class:`Trainer`.

A family subclasses it, names its ``task`` (the run folder ``runs/<task>/<name>/``) and fills in
what is its own; the engine does the rest the same way for all (run folder, resolved config, seed,
``metrics.csv``, checkpoints, resume, time box, TensorBoard, progress, plots)::

    class MyTrainer(Trainer):
        task = "mytask"
        monitor = "val_auc"              # picks best.keras; None: no best checkpoint

        def setup(self):                 # data and model, after the run folder and seed exist
            self.model = ...
        def fit_arguments(self):         # what model.fit gets besides callbacks/epochs/verbose
            return {"x": ..., "validation_data": ...}
        def family_callbacks(self):      # callbacks that add validation metrics to logs
            return [...]
        def finish(self):                # after training (chief only): plots, predictions, result
            return super().finish()

    run_folder = MyTrainer(MyConfig.from_file("cfg.yaml")).train()

Families whose loop is not ``model.fit`` (e.g. a GAN step) override :meth:`fit` and log each epoch
with :meth:`~.run.Run.log_epoch` (Keras' ``keras.utils.Progbar`` gives them a progress bar).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Dict, List, Optional

from .callbacks import run_callbacks
from .config import TrainingConfig
from .plots import plot_metrics, plot_train_val
from .run import Run

log = logging.getLogger(__name__)

__all__ = ["Trainer"]


class Trainer:
    """One training run of one model family.

    Args:
        cfg: the family's typed config (a :class:`~.config.TrainingConfig`).
        dist: a :class:`~.distributed.DistConfig` for data-parallel training over several devices or
            hosts (host 0 writes the run folder, the others a scratch folder); None: one device.

    Attributes:
        task: task folder of the runs (set by the family).
        monitor / mode: validation metric that picks ``best.keras`` and stops early.
        train_val_plots: ``(column, title)`` pairs drawn as train-vs-validation plots at the end.
        run: the :class:`~.run.Run` (set by :meth:`train`).
        model: the Keras model (set by :meth:`setup`).
    """

    task: str = "train"
    monitor: Optional[str] = None
    mode: str = "max"
    train_val_plots: tuple = ()

    def __init__(self, cfg: TrainingConfig, dist=None) -> None:
        self.cfg = cfg
        self.dist = dist
        self.topo = None
        self.run: Optional[Run] = None
        self.model = None
        self.seconds = 0.0

    # -- hooks -------------------------------------------------------------------------------------

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder (data-parallel hosts other than 0 do not)."""
        return self.topo is None or self.topo.is_chief

    def resolved_config(self) -> Dict[str, Any]:
        """What ``config.json`` holds: the config, the Keras backend and the device layout; families
        add what they derive from the config."""
        import keras

        d = self.cfg.get_config()
        d["keras_backend"] = keras.backend.backend()
        d["distributed"] = self.topo.describe() if self.topo.active else None
        return d

    def write_config(self) -> None:
        """``config.yaml`` (the config's own fields, resolved) and ``config.json`` (all of
        :meth:`resolved_config`) on the chief; families that derive more in :meth:`setup` call it again."""
        if self.is_chief:
            self.run.write_config(self.resolved_config(), fields=[f.name for f in dataclasses.fields(self.cfg)])

    def seed(self) -> None:
        """Seed Python, NumPy and the Keras backend from ``cfg.seed`` (when the config has one)."""
        seed = getattr(self.cfg, "seed", None)
        if seed is not None:
            import keras

            keras.utils.set_random_seed(int(seed))

    def setup(self) -> None:
        """Build data and ``self.model`` (the family's part)."""
        raise NotImplementedError

    def fit_arguments(self) -> Dict[str, Any]:
        """Arguments of ``model.fit`` besides ``callbacks``, ``epochs`` and ``verbose``."""
        raise NotImplementedError

    def family_callbacks(self) -> List:
        """Callbacks that add the family's validation metrics to ``logs`` (run before the shared ones)."""
        return []

    def callbacks(self) -> List:
        """The family's callbacks followed by the engine's (:func:`~.callbacks.run_callbacks`)."""
        cfg = self.cfg
        return run_callbacks(self.run, monitor=self.monitor, mode=self.mode,
                             patience=getattr(cfg, "patience", None), before=self.family_callbacks(),
                             max_minutes=getattr(cfg, "max_minutes", None),
                             stop_epoch=getattr(cfg, "stop_epoch", None),
                             tensorboard=getattr(cfg, "tensorboard", True)) + self.topo.callbacks()

    def fit(self) -> None:
        """``model.fit`` with the engine's callbacks (override for loops that are not ``fit``)."""
        self.model.fit(**self.fit_arguments(), epochs=self.cfg.epochs, callbacks=self.callbacks(),
                       verbose=getattr(self.cfg, "verbose", 1))

    def teardown(self) -> None:
        """Release data workers and the like (runs also when training fails); families call super()."""
        self.topo.close()

    def finish(self) -> Any:
        """After training, on the chief: the loss plots; returns what :meth:`train` returns (the run
        folder by default)."""
        if self.train_val_plots:
            plot_train_val(self.run.metrics_csv, self.run.path, self.train_val_plots)
        plot_metrics(self.run.metrics_csv, self.run.file("loss.png"), title=f"{self.task} {self.cfg.name}")
        return self.run.path

    # -- the loop ----------------------------------------------------------------------------------

    def run_path(self) -> str:
        """Where the run folder goes (default ``<runs_root>/<task>/<name>``)."""
        return Run.for_config(self.task, self.cfg, chief=False).path

    def make_run(self) -> Run:
        """Start the device layout (before Keras is imported: it selects the JAX backend when
        distributed), then the run folder: the chief's, or a scratch folder on other hosts."""
        from . import distributed

        self.topo = distributed.start(self.dist)
        path = self.topo.run_dir(self.run_path)
        return Run(self.task, self.cfg.name, path=path, chief=self.is_chief)

    def train(self) -> Any:
        """Run folder, resolved config, seed, setup, fit, finish; returns :meth:`finish`'s result."""
        self.run = self.make_run()
        try:
            self.write_config()
            self.seed()
            t0 = time.time()
            try:
                self.setup()
                t0 = time.time()
                self.fit()
            finally:
                self.seconds = time.time() - t0
                self.teardown()
            log.info("%s %s: training took %.1f min", self.task, self.cfg.name, self.seconds / 60)
            return self.finish() if self.is_chief else self.run_path()  # host 0 wrote it
        finally:
            self.run.close()  # TensorBoard writers, also when setup or fit failed
