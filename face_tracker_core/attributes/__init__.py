"""Face attributes (CelebA's 40) and the frozen-base "is it person X" transfer.

* :mod:`.celeba` -- readers for the CelebA annotation files (line-numbered errors);
* :mod:`.cropper` -- face crops (detector or given boxes, margin); :mod:`.crops` -- the on-disk crop cache;
* :mod:`.model`, :mod:`.small_cnn`, :mod:`.resnet_small`, :mod:`.residual_block` -- the models;
* :mod:`.training` -- :class:`AttributeTrainer` on the shared engine (``runs/attributes/<name>/``);
  :mod:`.pretrain` -- pre-training of the conv base;
* :mod:`.transfer_head`, :mod:`.transfer` -- the frozen-base transfer and its experiments;
  :mod:`.transfer_trainer` -- :class:`TransferTrainer` (``runs/transfer/<name>/``);
* :mod:`.predictor` -- :class:`AttributePredictor`, what the tracker node calls.

Importing this package does not import TensorFlow/Keras; the modules that need it do.
"""

from __future__ import annotations

__all__ = ["AttributePredictor"]


def __getattr__(name):
    if name == "AttributePredictor":
        from .predictor import AttributePredictor

        return AttributePredictor
    raise AttributeError(name)
