"""Face reenactment (face2face): 68-point landmark sketches -> pix2pix generator -> the target's face.

Modules: :mod:`.sketch` (drawing and pose/size/shape placement), :mod:`.prepare` (training pairs
from a video), :mod:`.unet` / :mod:`.patchgan` (the two networks), :mod:`.pix2pix` (the
conditional GAN and its TensorFlow/JAX train steps), :mod:`.training` (:class:`~.training.Pix2PixTrainer`
on the shared training engine: run folder, checkpoints, resume, summaries), :mod:`.evaluate` (SSIM, PSNR, L1, landmark error, fps),
:mod:`.export` (.keras, SavedModel, TFLite) and :mod:`.renderer` (camera frame -> rendered target
face at run time). Model card: ``docs/model_cards/reenactment.md``.

Importing this package does not import Keras/TensorFlow; the model modules do.
"""
