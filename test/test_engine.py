"""The training engine (face_tracker_core.engine) on a small real Keras model: the run folder every
family gets, typed configs, resume after a time box, hand-written loops."""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

import numpy as np
import pytest

from face_tracker_core.engine import Run, Trainer, TrainingConfig
from face_tracker_core.errors import DataError


@dataclasses.dataclass
class LineConfig(TrainingConfig):
    """A least-squares line fit: enough to exercise the engine."""

    name: str = "line"
    epochs: int = 4
    lr: float = 0.05
    seed: int = 0
    hidden: Tuple[int, ...] = (4,)
    stop_epoch: Optional[int] = None
    patience: Optional[int] = None
    verbose: int = 0


class LineTrainer(Trainer):
    task = "line"
    monitor = "val_loss"
    mode = "min"
    train_val_plots = (("loss", "total"),)

    def setup(self):
        import keras

        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(64, 2)).astype("float32")
        self.y = (self.x @ np.array([[1.5], [-2.0]], "float32") + 0.5).astype("float32")
        layers = [keras.layers.Dense(h, activation="relu") for h in self.cfg.hidden] + [keras.layers.Dense(1)]
        self.model = keras.Sequential([keras.Input((2,))] + layers)
        self.model.compile(keras.optimizers.Adam(self.cfg.lr), "mse")

    def fit_arguments(self):
        return {"x": self.x[:48], "y": self.y[:48], "validation_data": (self.x[48:], self.y[48:]),
                "batch_size": 16}


def test_config_round_trip_overrides_and_unknown_keys(tmp_path):
    cfg = LineConfig.from_config({"hidden": [8, 8], "lr": 0.1})
    assert cfg.hidden == (8, 8) and cfg.lr == 0.1
    assert LineConfig.from_config(cfg.get_config()) == cfg
    assert cfg.get_config()["hidden"] == [8, 8]  # plain YAML-able values
    path = cfg.to_yaml(str(tmp_path / "c.yaml"))
    again = LineConfig.from_file(path, ["epochs=2", "name=other"])
    assert again == dataclasses.replace(cfg, epochs=2, name="other")
    with pytest.raises(DataError, match="unknown LineConfig keys.*hiden"):
        LineConfig.from_config({"hiden": [4]})
    with pytest.raises(DataError, match="not KEY=VALUE"):
        LineConfig.from_file(None, ["epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(DataError, match="bad.yaml: config must be a mapping"):
        LineConfig.from_file(str(bad))


def test_trainer_writes_the_run_folder(tmp_path):
    cfg = LineConfig(runs_root=str(tmp_path))
    path = LineTrainer(cfg).train()
    assert path == os.path.join(str(tmp_path), "line", "line")
    for name in ("config.json", "config.yaml", "metrics.csv", "best.keras", "last.keras", "loss.png",
                 "loss_total.png"):
        assert os.path.isfile(os.path.join(path, name)), name
    cols = Run("line", "line", str(tmp_path)).metrics()
    assert cols["epoch"] == [0, 1, 2, 3]
    assert {"loss", "val_loss", "lr"} <= set(cols)
    assert cols["loss"][-1] < cols["loss"][0]  # it learned something
    tb = os.listdir(os.path.join(path, "tensorboard", "train"))
    assert any(f.startswith("events.out.tfevents") for f in tb)
    import json

    resolved = json.load(open(os.path.join(path, "config.json")))
    assert resolved["hidden"] == [4] and resolved["keras_backend"] and resolved["distributed"] is None
    # config.yaml is a config file again: the same run from it (the JSON also records backend and layout)
    assert LineConfig.from_file(os.path.join(path, "config.yaml")) == cfg
    assert not os.path.isdir(os.path.join(path, "backup"))  # a finished run leaves no resume state


def test_time_boxed_run_resumes_at_the_next_epoch(tmp_path):
    cfg = LineConfig(runs_root=str(tmp_path), stop_epoch=2)
    path = LineTrainer(cfg).train()
    assert os.path.isdir(os.path.join(path, "backup"))
    assert Run("line", "line", str(tmp_path)).metrics()["epoch"] == [0, 1]
    LineTrainer(dataclasses.replace(cfg, stop_epoch=None)).train()
    assert Run("line", "line", str(tmp_path)).metrics()["epoch"] == [0, 1, 2, 3]
    assert not os.path.isdir(os.path.join(path, "backup"))


def test_run_log_epoch_for_hand_written_loops(tmp_path):
    run = Run("loop", "a", str(tmp_path))
    run.log_epoch(0, {"loss": 1.0, "val_ssim": 0.5})
    run.log_epoch(1, {"loss": 0.5, "val_ssim": float("nan"), "extra": 3})  # columns fixed by row 1
    run.close()
    cols = run.metrics()
    assert cols["epoch"] == [0, 1] and cols["loss"] == [1.0, 0.5] and "extra" not in cols
    assert np.isnan(cols["val_ssim"][1])
    assert os.listdir(os.path.join(run.path, "tensorboard", "validation"))
    rows = run.write_rows_csv("per_item.csv", [{"k": "a", "v": 0.123456789}])
    assert open(rows).read().splitlines() == ["k,v", "a,0.123457"]


def test_train_cli_options_are_typed_values_not_yaml(tmp_path):
    """``--name 2024`` stays the string "2024" (an option is never re-parsed as YAML, only ``--set``
    values are); the file's values hold where an option is not given."""
    import argparse

    from face_tracker_core.cli import train_detector, train_facetracker

    cfg_file = tmp_path / "d.yaml"
    cfg_file.write_text("epochs: 7\nname: from_file\n")
    p = argparse.ArgumentParser()
    train_detector.add_arguments(p)
    cfg = train_detector.training_config(p.parse_args(["--config", str(cfg_file), "--name", "2024",
                                                       "--set", "batch_size=8"]))
    assert (cfg.name, cfg.epochs, cfg.batch_size) == ("2024", 7, 8)
    default = train_detector.training_config(p.parse_args([]))
    assert default.name == "default_detector_01"  # the chain's first config
    p = argparse.ArgumentParser()
    train_facetracker.add_arguments(p)
    cfg = train_facetracker.training_config(p.parse_args(["--name", "yes", "--weights", "none", "--epochs", "3"]))
    assert (cfg.name, cfg.weights, cfg.epochs) == ("yes", None, 3)
