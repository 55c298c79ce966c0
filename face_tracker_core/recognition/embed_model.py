"""The files of a trained embedder: starting weights in, ``model.keras`` + ``model.json`` (card) out,
and the same result from a stopped run's ``best.weights.h5`` (:func:`finalize_run`)."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict

import numpy as np

from ..engine.config import load_config_file
from ..engine.plots import plot_metrics, read_metrics
from ..engine.run import Run
from ..errors import DataError
from .embed_data import center_crop, load_crops
from .embed_metrics import embed_crops, fit_pair_head, pair_separability

log = logging.getLogger(__name__)

__all__ = ["load_init_weights", "save_uncompiled", "final_validation", "write_model", "finalize_run"]


def load_init_weights(net, path: str) -> None:
    """Copy the weights of ``path`` (a saved embedder ``.keras`` or a ``.weights.h5``) into ``net``.

    Raises:
        DataError: the file is missing, unreadable or holds another architecture.
    """
    import keras

    if not os.path.isfile(path):
        raise DataError(f"{path}: init weights not found")
    try:
        if path.endswith(".weights.h5"):
            net.load_weights(path)
        else:
            src = keras.saving.load_model(path, compile=False)
            net.set_weights(src.get_weights())
    except Exception as e:  # keras raises ValueError / OSError / KeyError depending on the damage
        raise DataError(f"{path}: cannot be used as init weights of this network "
                        f"({type(e).__name__}: {str(e)[:200]})") from e


def save_uncompiled(net, path: str) -> None:
    """Save ``net`` without optimizer state or loss (the shipped file holds weights only, a third
    of what a compiled save holds, and loads without our custom loss functions)."""
    import keras

    export = keras.Model.from_config(net.get_config())
    export.set_weights(net.get_weights())
    export.save(path)


def final_validation(net, cfg, val_x: np.ndarray, val_y: np.ndarray, train_model=None) -> Dict[str, Any]:
    """Pair separability of the kept weights and, for ``siamese``, the pair head of the card.

    Args:
        net: the embedding network with its kept weights.
        cfg: the run's :class:`~.embed_trainer.EmbedderTrainConfig`.
        val_x: ``(N, S, S, 3)`` validation crops at the input size (may be empty).
        val_y: ``(N,)`` person ids.
        train_model: the trained siamese pair model (its head is the card's); None: the head is refit
            on the validation pairs.

    Returns:
        ``{"val": {"val_acc", "val_auc"} or {}, "head": {"a", "b"} or None, "head_source": str or None}``.
    """
    emb = embed_crops(net, val_x, cfg.flip) if len(val_x) else None
    out: Dict[str, Any] = {"val": pair_separability(emb, val_y) if emb is not None else {},
                           "head": None, "head_source": None}
    if cfg.model == "siamese":
        if train_model is not None:
            from .siamese import head_params

            out["head"] = head_params(train_model)
        elif emb is not None:
            out["head"] = fit_pair_head(emb, val_y)
            out["head_source"] = "refit on validation pairs (training head not saved with the weights)"
    return out


def write_model(net, cfg, run: Run, info: Dict[str, Any], final: Dict[str, Any]) -> Dict[str, Any]:
    """``model.keras`` + ``model.json`` (card) + ``loss.png`` of a trained embedding network.

    Args:
        net: the embedding network.
        cfg: the run's :class:`~.embed_trainer.EmbedderTrainConfig`.
        run: the run folder.
        info: ``train_people``, ``train_faces``, ``backend``, ``selected`` (what the weights are),
            ``train_seconds`` and ``data`` (photo root of the crops).
        final: :func:`final_validation` of the weights.

    Returns:
        ``{"model_path", "train_seconds", "val_acc", "val_auc"}`` (no ``val_*`` without validation people).
    """
    model_path = run.file("model.keras")
    save_uncompiled(net, model_path)
    card = {"name": cfg.model, "input_size": cfg.input_size, "padding": cfg.padding,
            "dim": cfg.dim, "flip": cfg.flip, "params": int(net.count_params()),
            "train_seconds": round(info["train_seconds"], 1), "train_people": info["train_people"],
            "train_faces": info["train_faces"], "val": final["val"], "backend": info["backend"],
            "init": cfg.init, "selected": info.get("selected"),
            "train_splits": list(cfg.train_splits), "fold_val": bool(cfg.fold_val),
            "loss": "triplet_semihard" if cfg.model == "facenet" else "balanced_pair_bce",
            "data": info.get("data"), "licence": "CelebA: non-commercial research only"}
    if final.get("head") is not None:
        card["head"] = final["head"]
        if final.get("head_source"):
            card["head_source"] = final["head_source"]
    run.write_json("model.json", card)
    # The validation curves, or the learning rate where nothing was watched (no empty panel).
    panels = [["loss"], ["val_acc", "val_auc"] if final["val"] else ["lr"]]
    plot_metrics(run.metrics_csv, run.file("loss.png"), panels=panels, title=cfg.model)
    log.info("saved %s (%.0f s of training, val %s)", model_path, info["train_seconds"], final["val"])
    return {"model_path": model_path, "train_seconds": info["train_seconds"], **final["val"]}


def finalize_run(run_dir: str) -> Dict[str, Any]:
    """Write ``model.keras`` + card from a run's ``best.weights.h5`` (a run stopped before its end).

    Rebuilds the network from the run's ``config.json``, loads the best validation weights and
    writes what :meth:`~.embed_trainer.EmbedderTrainer.finish` writes at the end of a run.

    Raises:
        DataError: the run has no ``config.json`` or ``best.weights.h5``.
    """
    from .embed_trainer import EmbedderTrainConfig, build_embedder

    cfg_path, w_path = os.path.join(run_dir, "config.json"), os.path.join(run_dir, "best.weights.h5")
    for p in (cfg_path, w_path):
        if not os.path.isfile(p):
            raise DataError(f"{p}: not found (is {run_dir} an embedder run with a saved best epoch?)")
    resolved = load_config_file(cfg_path)
    fields = {f.name for f in dataclasses.fields(EmbedderTrainConfig)}
    cfg = EmbedderTrainConfig.from_config({k: v for k, v in resolved.items() if k in fields})
    data = load_crops(cfg.crops)
    va = data["split"] == "val"
    val_x, val_y = center_crop(data["images"][va], cfg.input_size), data["label"][va]
    net = build_embedder(cfg)[0]
    net.load_weights(w_path)
    elapsed = [v for v in read_metrics(os.path.join(run_dir, "metrics.csv")).get("elapsed_s", []) if v == v]
    info = {"train_people": resolved.get("train_people"), "train_faces": resolved.get("train_faces"),
            "backend": resolved.get("keras_backend", resolved.get("backend")), "selected": None,
            "train_seconds": elapsed[-1] if elapsed else 0.0, "data": data["meta"].get("root")}
    run = Run("embedder", cfg.name, path=run_dir)
    return write_model(net, cfg, run, info, final_validation(net, cfg, val_x, val_y))
