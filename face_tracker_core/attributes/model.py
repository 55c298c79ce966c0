"""Attribute model = conv base + multi-label head; saving/loading with a JSON sidecar.

A model file ``NAME.keras`` comes with ``NAME.json`` holding what inference needs besides the
weights: attribute names, crop geometry (margin, size, colour), the architecture and how it was
trained. The conv base is a nested Keras model named ``conv_base`` so the transfer task can take
it out and freeze it as one piece.
"""

from __future__ import annotations

import json
import os
from typing import List, Optional, Sequence, Tuple

import keras

from ..errors import ModelLoadError
from ..export import read_json_sidecar
from . import residual_block  # noqa: F401  (registers ResidualBlock for loading)
from .resnet_small import build_resnet_base
from .small_cnn import build_small_cnn_base

__all__ = ["ARCHS", "ARCH_ALIASES", "build_base", "build_attribute_model", "conv_base_of", "block_names", "save_model",
           "load_model", "sidecar_path"]

ARCHS = ("resnet", "small_cnn")
#: former architecture names still accepted (configs and sidecars of older runs): old -> current
ARCH_ALIASES = {"seed": "small_cnn"}


def build_base(arch: str, input_shape: Tuple[int, int, int]) -> keras.Model:
    """Conv base by name: ``"resnet"`` (:func:`build_resnet_base`) or ``"small_cnn"``
    (:func:`build_small_cnn_base`; ``"seed"`` is accepted for it)."""
    arch = ARCH_ALIASES.get(arch, arch)
    if arch == "resnet":
        return build_resnet_base(input_shape)
    if arch == "small_cnn":
        return build_small_cnn_base(input_shape)
    raise ValueError(f"unknown architecture '{arch}' (choose from {', '.join(ARCHS)})")


def build_attribute_model(base: keras.Model, n_outputs: int, hidden: int = 256, dropout: float = 0.3,
                          activation: str = "sigmoid", name: str = "attributes") -> keras.Model:
    """Base + head ``Dropout -> Dense(hidden, ReLU) -> Dropout -> Dense(n_outputs, activation)``.

    Args:
        base: conv base ``[B, H, W, C] -> [B, D]``.
        n_outputs: 40 for CelebA (one sigmoid per attribute), or the number of people for the
            identity pre-training head (``activation="softmax"``).
        hidden: units of the hidden dense layer (0: no hidden layer).

    Returns:
        Model ``[B, H, W, C]`` (0..255) ``-> [B, n_outputs]`` probabilities.
    """
    inp = keras.Input(base.input_shape[1:], name="image")
    x = base(inp)
    x = keras.layers.Dropout(dropout, name="head_dropout1")(x)
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu", name="head_hidden")(x)
        x = keras.layers.Dropout(dropout, name="head_dropout2")(x)
    out = keras.layers.Dense(n_outputs, activation=activation, name="head_out")(x)
    return keras.Model(inp, out, name=name)


def conv_base_of(model: keras.Model) -> keras.Model:
    """The nested ``conv_base`` model of an attribute (or transfer) model."""
    try:
        return model.get_layer("conv_base")
    except ValueError:
        raise ModelLoadError(f"model '{model.name}' has no 'conv_base' sub-model "
                             "(not an attribute model of this package)") from None


def block_names(base: keras.Model) -> List[str]:
    """Names of the base's blocks (``block1``, ``block2``...), bottom to top."""
    names = []
    for layer in base.layers:
        if layer.name.startswith("block"):
            b = layer.name.split("_")[0]
            if b not in names:
                names.append(b)
    return names


def sidecar_path(model_path: str) -> str:
    """``x/NAME.keras`` -> ``x/NAME.json``."""
    return os.path.splitext(model_path)[0] + ".json"


def save_model(model: keras.Model, path: str, meta: dict) -> None:
    """Save ``model`` to ``path`` (``.keras``) and ``meta`` to its JSON sidecar."""
    import keras

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # An uncompiled copy: Keras 3 would otherwise store the optimizer state (3x the file size).
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    clean.save(path)
    with open(sidecar_path(path), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)


def load_model(path: str, expect_outputs: Optional[int] = None) -> Tuple[keras.Model, dict]:
    """Load a ``.keras`` model and its sidecar.

    Args:
        path: ``.keras`` file.
        expect_outputs: check the last dimension of the output (e.g. the number of names).

    Returns:
        ``(model, meta)``; ``meta`` is ``{}`` when there is no sidecar.

    Raises:
        ModelLoadError: missing file, not a Keras archive, unknown layers, bad sidecar JSON, or an
            output size that does not match; the message names the file.
    """
    if not os.path.isfile(path):
        raise ModelLoadError(f"{path}: model file not found")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, BadZipFile, KeyError... for bad files
        raise ModelLoadError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {exc})") from exc
    side = sidecar_path(path)
    meta = read_json_sidecar(side, "model metadata")
    n_out = model.output_shape[-1]
    if expect_outputs is not None and n_out != expect_outputs:
        raise ModelLoadError(f"{path}: model has {n_out} outputs, expected {expect_outputs}")
    names: Sequence[str] = meta.get("attributes", [])
    if names and len(names) != n_out:
        raise ModelLoadError(f"{side}: lists {len(names)} attribute names but {path} has {n_out} outputs")
    return model, meta
