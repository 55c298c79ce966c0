"""Face reenactment (face2face): 68-point landmark sketches -> pix2pix generator -> the target's face.

Modules: :mod:`.sketch` (drawing and pose/size normalisation), :mod:`.prepare` (training pairs
from a video), :mod:`.unet` / :mod:`.patchgan` (the two networks), :mod:`.pix2pix` (the
conditional GAN and its training), :mod:`.evaluate` (SSIM, PSNR, L1, landmark error, fps) and
:mod:`.renderer` (camera frame -> rendered target face at run time).

Importing this package does not import Keras/TensorFlow; the model modules do.
"""
