"""Attribute and transfer runs have typed engine configs: YAML round trip, overrides, unknown keys."""

from __future__ import annotations

import pytest

from face_tracker_core.attributes.training import AttributeTrainConfig, AttributeTrainer
from face_tracker_core.attributes.transfer_trainer import TransferTrainConfig, TransferTrainer
from face_tracker_core.engine import Trainer, TrainingConfig
from face_tracker_core.errors import DataError


def test_attribute_config_file_and_overrides(tmp_path):
    cfg = AttributeTrainConfig(pretrain_extra_detectors=["default"], epochs=3)
    assert isinstance(cfg, TrainingConfig) and cfg.name == "celeba" and cfg.runs_root == "runs"
    path = cfg.to_yaml(str(tmp_path / "attr.yaml"))
    back = AttributeTrainConfig.from_file(path, ["epochs=5", "pretrain_identity=/data/people"])
    assert back == cfg.replace(epochs=5, pretrain_identity="/data/people")
    with pytest.raises(DataError, match="epoch"):
        AttributeTrainConfig.from_config({"epoch": 3})
    assert issubclass(AttributeTrainer, Trainer) and AttributeTrainer.task == "attributes"


def test_transfer_config_head_options_and_protocol_check():
    cfg = TransferTrainConfig.from_config({"identity_root": "people", "copies": 2, "solver": "adam"})
    assert cfg.head() == {"copies": 2, "solver": "adam"}
    assert TransferTrainConfig().head() == {}  # every head option from DEFAULT_HEAD
    assert TransferTrainer.task == "transfer"
    with pytest.raises(DataError, match="--positives and --negatives"):
        TransferTrainer(TransferTrainConfig(positives="me"))


def test_cli_config_file_then_options_then_set(tmp_path):
    import argparse

    from face_tracker_core.cli import train_attributes, train_transfer

    p = argparse.ArgumentParser()
    train_attributes.add_arguments(p)
    assert train_attributes.training_config(p.parse_args([])) == AttributeTrainConfig()
    path = AttributeTrainConfig(name="from_file", epochs=5, lr=0.01).to_yaml(str(tmp_path / "a.yaml"))
    cfg = train_attributes.training_config(p.parse_args(
        ["--config", path, "--epochs", "7", "--pretrain-extra-detector", "haar", "--set", "lr=0.02"]))
    assert (cfg.name, cfg.epochs, cfg.lr, cfg.pretrain_extra_detectors) == ("from_file", 7, 0.02, ["haar"])

    p = argparse.ArgumentParser()
    train_transfer.add_arguments(p)
    assert train_transfer.training_config(p.parse_args([])) == TransferTrainConfig()
    cfg = train_transfer.training_config(p.parse_args(["--identity-root", "people", "--no-normalize", "--copies",
                                                       "4", "--set", "targets=2"]))
    assert (cfg.identity_root, cfg.normalize, cfg.head(), cfg.targets) == ("people", False, {"copies": 4}, 2)
