"""pix2pix (Isola et al. 2017) in Keras 3: U-Net generator + PatchGAN, conditional GAN + lambda * L1.

:class:`Pix2Pix` is a ``keras.Model`` whose ``fit`` trains both networks with one Adam
(2e-4, beta1 0.5) over the union of their weights: the generator's weights get the gradient of
``G loss = BCE(D(x, G(x)), 1) + lambda * |y - G(x)|_1`` and the discriminator's the gradient of
``D loss = (BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)) / 2``, both from the same batch (as the
TensorFlow pix2pix tutorial does). Adam is element-wise, so one optimizer over both weight sets
is exactly two Adams with the same settings, and it keeps Keras' own optimizer saving/restoring.

``train_step`` has a TensorFlow version (``GradientTape``) and a stateless JAX version (Keras'
"customizing fit() with JAX" pattern): the shipped model is trained on a GPU machine that has JAX
but no TensorFlow, and tests and fine-tuning run on CPU TensorFlow. The PyTorch backend is not
supported.

Data: ``fit(x=sketches, y=frames)`` with ``uint8`` ``[B, R, R, 3]`` BGR arrays; they are scaled
to ``[-1, 1]`` inside the step (``uint8`` keeps host->device copies 4x smaller).
"""

from __future__ import annotations

from typing import Any, Dict

import keras
from keras import ops

from .patchgan import PatchGANConfig, build_patchgan
from .unet import UNetConfig, build_unet_generator


def to_unit(x):
    """``uint8``/float 0..255 -> float32 in ``[-1, 1]``."""
    return ops.cast(x, "float32") / 127.5 - 1.0


def paper_optimizer(learning_rate: float = 2e-4, beta_1: float = 0.5) -> keras.optimizers.Optimizer:
    """The paper's Adam(2e-4, beta_1=0.5): ``model.compile(optimizer=paper_optimizer())``."""
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1)


def _bce_logits(logits, target: float):
    labels = ops.full_like(logits, target)
    return ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True))


@keras.saving.register_keras_serializable(package="face_tracker")
class Pix2Pix(keras.Model):
    """The conditional GAN.

    Args:
        generator: :class:`UNetConfig` (or its ``get_config()`` dict).
        discriminator: :class:`PatchGANConfig` (or its dict); its resolution is forced to the
            generator's.
        l1_weight: lambda of the L1 term (the paper: 100).

    ``model(sketch)`` runs the generator: ``[B, R, R, 3]`` in ``[-1, 1]`` -> same shape in ``[-1, 1]``.
    """

    def __init__(self, generator: UNetConfig | Dict | None = None, discriminator: PatchGANConfig | Dict | None = None,
                 l1_weight: float = 100.0, **kwargs) -> None:
        super().__init__(**kwargs)
        gcfg = generator if isinstance(generator, UNetConfig) else UNetConfig.from_config(generator or {})
        dcfg = discriminator if isinstance(discriminator, PatchGANConfig) else \
            PatchGANConfig.from_config(discriminator or {})
        if dcfg.resolution != gcfg.resolution:
            dcfg = PatchGANConfig.from_config({**dcfg.get_config(), "resolution": gcfg.resolution})
        self.generator_config, self.discriminator_config = gcfg, dcfg
        self.l1_weight = float(l1_weight)
        self.generator = build_unet_generator(gcfg)
        self.discriminator = build_patchgan(dcfg)
        self.g_gan_tracker = keras.metrics.Mean(name="g_gan")
        self.g_l1_tracker = keras.metrics.Mean(name="g_l1")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")  # mean D(x, y) probability, for diagnosis
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True
        self._index = None

    # -- Keras plumbing -------------------------------------------------------------------
    @property
    def metrics(self):
        return [self.g_gan_tracker, self.g_l1_tracker, self.d_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def call(self, sketch, training=False):
        return self.generator(sketch, training=training)

    def build(self, input_shape=None):  # both networks are built in __init__
        self.built = True

    def get_config(self) -> Dict[str, Any]:
        cfg = super().get_config()
        cfg.update(generator=self.generator_config.get_config(), discriminator=self.discriminator_config.get_config(),
                   l1_weight=self.l1_weight)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -- losses (backend-agnostic) ------------------------------------------------------
    def _gan_losses(self, y, fake, d_real, d_fake_for_g, d_fake_for_d):
        g_gan = _bce_logits(d_fake_for_g, 1.0)
        g_l1 = ops.mean(ops.abs(y - fake))
        d_loss = 0.5 * (_bce_logits(d_real, 1.0) + _bce_logits(d_fake_for_d, 0.0))
        return g_gan, g_l1, d_loss

    def _diagnostics(self, d_real, d_fake):
        return ops.mean(ops.sigmoid(d_real)), ops.mean(ops.sigmoid(d_fake))

    # -- training steps -----------------------------------------------------------------
    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "jax":
            return self._train_step_jax(*args)
        if backend == "tensorflow":
            return self._train_step_tf(*args)
        raise NotImplementedError(f"Pix2Pix training supports the tensorflow and jax backends, not '{backend}'")

    def _train_step_tf(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        x, y = to_unit(x), to_unit(y)
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator(x, training=True)
            d_real = self.discriminator([x, y], training=True)
            d_fake = self.discriminator([x, fake], training=True)
            # The D loss only differentiates D's weights below, so `fake` needs no stop_gradient.
            g_gan, g_l1, d_loss = self._gan_losses(y, fake, d_real, d_fake, d_fake)
            g_total = g_gan + self.l1_weight * g_l1
        g_grads = tape.gradient(g_total, g_vars)
        d_grads = tape.gradient(d_loss, d_vars)
        del tape
        self.optimizer.apply(list(g_grads) + list(d_grads), list(g_vars) + list(d_vars))
        p_real, p_fake = self._diagnostics(d_real, d_fake)
        for tracker, value in zip(self.metrics, (g_gan, g_l1, d_loss, p_real, p_fake)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def _indices(self):
        """Positions of each network's variables in the model's flat variable lists (JAX state)."""
        if self._index is None:
            tv = {id(v): i for i, v in enumerate(self.trainable_variables)}
            ntv = {id(v): i for i, v in enumerate(self.non_trainable_variables)}
            self._index = {
                "g_tv": [tv[id(v)] for v in self.generator.trainable_variables],
                "d_tv": [tv[id(v)] for v in self.discriminator.trainable_variables],
                "g_ntv": [ntv[id(v)] for v in self.generator.non_trainable_variables],
                "d_ntv": [ntv[id(v)] for v in self.discriminator.non_trainable_variables],
            }
            n_tv = len(self._index["g_tv"]) + len(self._index["d_tv"])
            n_ntv = len(self._index["g_ntv"]) + len(self._index["d_ntv"])
            if n_tv != len(tv) or n_ntv != len(ntv):
                raise RuntimeError("Pix2Pix variables outside the generator/discriminator are not supported")
        return self._index

    def _train_step_jax(self, state, data):
        import jax

        trainable, non_trainable, optimizer_vars, metrics_vars = state
        idx = self._indices()
        x, y = to_unit(data[0]), to_unit(data[1])
        g_ntv = [non_trainable[i] for i in idx["g_ntv"]]
        d_ntv = [non_trainable[i] for i in idx["d_ntv"]]

        def loss_fn(g_tv, d_tv):
            fake, new_g_ntv = self.generator.stateless_call(g_tv, g_ntv, x, training=True)
            # G's adversarial term must not move D: D's weights enter it as constants.
            d_fake_g, nt = self.discriminator.stateless_call(
                [jax.lax.stop_gradient(w) for w in d_tv], d_ntv, [x, fake], training=True)
            d_real, nt = self.discriminator.stateless_call(d_tv, nt, [x, y], training=True)
            # D's fake term must not move G.
            d_fake_d, nt = self.discriminator.stateless_call(d_tv, nt, [x, jax.lax.stop_gradient(fake)],
                                                             training=True)
            g_gan, g_l1, d_loss = self._gan_losses(y, fake, d_real, d_fake_g, d_fake_d)
            # Each weight set only receives the gradient of its own loss (see stop_gradients above),
            # so the sum differentiates to exactly (dG_loss/dG, dD_loss/dD).
            total = g_gan + self.l1_weight * g_l1 + d_loss
            return total, (g_gan, g_l1, d_loss, d_real, d_fake_d, new_g_ntv, nt)

        g_tv = [trainable[i] for i in idx["g_tv"]]
        d_tv = [trainable[i] for i in idx["d_tv"]]
        (_, aux), (g_grads, d_grads) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(g_tv, d_tv)
        g_gan, g_l1, d_loss, d_real, d_fake, new_g_ntv, new_d_ntv = aux

        grads = [None] * len(trainable)
        for i, g in zip(idx["g_tv"], g_grads):
            grads[i] = g
        for i, g in zip(idx["d_tv"], d_grads):
            grads[i] = g
        trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
        non_trainable = list(non_trainable)
        for i, v in zip(idx["g_ntv"], new_g_ntv):
            non_trainable[i] = v
        for i, v in zip(idx["d_ntv"], new_d_ntv):
            non_trainable[i] = v

        p_real, p_fake = self._diagnostics(d_real, d_fake)
        with keras.StatelessScope(state_mapping=list(zip(self.metrics_variables, metrics_vars))) as scope:
            for tracker, value in zip(self.metrics, (g_gan, g_l1, d_loss, p_real, p_fake)):
                tracker.update_state(value)
            logs = {m.name: m.result() for m in self.metrics}
        new_metrics = []
        for ref in self.metrics_variables:
            v = scope.get_current_value(ref)
            new_metrics.append(ref.value if v is None else v)
        return logs, (trainable, non_trainable, optimizer_vars, new_metrics)

    def test_step(self, *args):
        """Held-out L1 of the generator (inference mode), as ``g_l1``."""
        if keras.backend.backend() == "jax":
            state, data = args
            trainable, non_trainable, metrics_vars = state
            idx = self._indices()
            x, y = to_unit(data[0]), to_unit(data[1])
            fake, _ = self.generator.stateless_call([trainable[i] for i in idx["g_tv"]],
                                                    [non_trainable[i] for i in idx["g_ntv"]], x, training=False)
            with keras.StatelessScope(state_mapping=list(zip(self.metrics_variables, metrics_vars))) as scope:
                self.g_l1_tracker.update_state(ops.mean(ops.abs(y - fake)))
                logs = {"g_l1": self.g_l1_tracker.result()}
            new_metrics = []
            for ref in self.metrics_variables:
                v = scope.get_current_value(ref)
                new_metrics.append(ref.value if v is None else v)
            return logs, (trainable, non_trainable, new_metrics)
        (data,) = args
        x, y = to_unit(data[0]), to_unit(data[1])
        fake = self.generator(x, training=False)
        self.g_l1_tracker.update_state(ops.mean(ops.abs(y - fake)))
        return {"g_l1": self.g_l1_tracker.result()}
