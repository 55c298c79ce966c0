"""The training engine every model family shares.

* :mod:`.config`: :class:`TrainingConfig`, the typed-config base (``get_config``/``from_config``, YAML
  files with ``key=value`` overrides);
* :mod:`.run`: :class:`Run`, the run folder ``runs/<task>/<name>/`` (config, ``metrics.csv``,
  TensorBoard, JSON/CSV results);
* :mod:`.trainer`: :class:`Trainer`, the loop (seed, setup, fit, resume, time box, finish);
* :mod:`.callbacks`: the Keras callbacks every ``fit`` shares (checkpoints, early stopping, CSV,
  resumable backup, TensorBoard, per-epoch log);
* :mod:`.plots`: loss curves and prediction grids; :mod:`.tensorboard`: a dependency-free event writer;
* :mod:`.distributed` / :mod:`.distributed_keras`: data-parallel training over devices and hosts.

Importing this package imports neither Keras nor TensorFlow.
"""

from .config import TrainingConfig, apply_overrides, load_config_file
from .run import Run
from .trainer import Trainer

__all__ = ["TrainingConfig", "apply_overrides", "load_config_file", "Run", "Trainer"]
