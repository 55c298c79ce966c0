"""Attribute conv bases by name; the former name of ``small_cnn`` still works for old configs and CLI calls."""

from __future__ import annotations

import argparse
import logging

import pytest

from face_tracker_core.attributes.model import ARCHS, build_base
from face_tracker_core.cli import train_attributes


def test_small_cnn_and_its_former_name_build_the_same_base():
    a, b = build_base("small_cnn", (32, 32, 3)), build_base("seed", (32, 32, 3))
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    assert a.count_params() == b.count_params()
    assert "seed" not in ARCHS
    with pytest.raises(ValueError, match="unknown architecture"):
        build_base("vgg", (32, 32, 3))


def test_cli_arch_option(caplog):
    p = argparse.ArgumentParser()
    train_attributes.add_arguments(p)

    def arch(argv):
        return train_attributes.training_config(p.parse_args(argv)).arch

    assert arch([]) == "resnet"
    assert arch(["--arch", "small_cnn"]) == "small_cnn"
    with caplog.at_level(logging.WARNING):
        assert arch(["--arch", "seed"]) == "small_cnn"
    assert "deprecated" in caplog.text
