"""GAN and perceptual training on segsr's model: a generator and a discriminator, stepped the SegSRModel way.

Options (basicsr's keys; ``train.rgb_bands`` and ``perceptual_opt.vgg_weights`` are segsr's)::

    network_d: {type: UNetDiscriminatorSN, num_in_ch: 3, num_feat: 64, skip_connection: true}
    train:
      optim_d: {type: Adam, lr: 1.0e-4, betas: [0.9, 0.99]}
      pixel_opt: {type: L1Loss, loss_weight: 1.0}
      ldl_opt: {type: L1Loss, loss_weight: 1.0}       # optional: LDL's artifact map (needs ema_decay > 0)
      perceptual_opt: {type: PerceptualLoss, layer_weights: {conv5_4: 1}, vgg_weights: FILE}
      gan_opt: {type: GANLoss, gan_type: vanilla, loss_weight: 0.1}
      net_d_iters: 1        # the generator steps every net_d_iters iterations...
      net_d_init_iters: 0   # ...and not before this iteration; the discriminator steps every iteration
      rgb_bands: ~          # bands (from 1) the perceptual and GAN terms see; default network_g.sfem.rgb_bands
    l1_gt_usm: true         # Real-ESRGAN's top-level keys: the pixel and LDL, perceptual and GAN terms compare
    percep_gt_usm: true     # with the unsharp-masked HR (unset: true), else the plain HR; where none is set,
    gan_gt_usm: false       # every term sees the target of the degradation (gt_usm)

On multi-band data the pixel and LDL losses see every band; the perceptual loss and the discriminator see
the three ``rgb_bands`` only (VGG and the discriminators take three channels). An iteration whose losses
are not finite on some process changes no weights, optimiser or EMA of either network from that point on.
Checkpoints: ``net_g_<iter>.pth`` and ``net_d_<iter>.pth``, each with its network options; the training
state holds both optimisers and schedulers, so a resumed run continues bitwise.
"""

import math
from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.losses.loss_util import get_refined_artifact_map
from basicsr.utils.registry import MODEL_REGISTRY

from segsr.archs.sfem_arch import clip_bands
from segsr.degradations.sharpen import UnsharpMask
from segsr.models.perceptual import build_perceptual_loss
from segsr.models.sr_model import SegSRModel
from segsr.options.degradation import usm_targets
from segsr.options.network import input_bands
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError

LDL_KERNEL = 7  # the local window of LDL's artifact map, as published


def gan_bands(opt: dict) -> tuple[int, ...] | None:
    """0-based bands the perceptual and GAN terms see (None: all three): ``train.rgb_bands``, else the
    generator's ``sfem.rgb_bands``."""
    network = opt['network_g']
    backbone = network.get('backbone')
    bands = input_bands(backbone if isinstance(backbone, dict) else network)
    sfem = network.get('sfem') if isinstance(network.get('sfem'), dict) else {}
    chosen = opt['train'].get('rgb_bands', sfem.get('rgb_bands'))
    if chosen is None and bands != 3:
        raise SegSRError(f'train.rgb_bands: missing; the network makes {bands} band(s), the perceptual and GAN '
                         'terms see 3: set train.rgb_bands to the three they see, numbered from 1 (e.g. [3, 2, 1])')
    try:
        return clip_bands(chosen, bands)
    except SegSRError as err:
        raise SegSRError(str(err).replace('network_g.sfem.rgb_bands', 'train.rgb_bands', 1)
                         .replace('CLIP sees', 'the perceptual and GAN terms see')) from None


# train options of SegSRModel's step that the two-network step here does not apply, with their unset values
UNAPPLIED_STEP_OPTIONS = {'accum_iter': 1, 'grad_clip_max_norm': None, 'ema_start_iter': 0}


@MODEL_REGISTRY.register()
class SegSRGANModel(SegSRModel):
    """SegSRModel with a discriminator, GAN, perceptual and LDL losses (options: see the module)."""

    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        missing = ([] if isinstance(self.opt.get('network_d'), dict) else ['network_d']) + [
            f'train.{key}' for key in ('gan_opt', 'optim_d') if not train_opt.get(key)]
        if missing:
            raise SegSRError(f'model_type {self.opt["model_type"]} trains a discriminator: {", ".join(missing)} '
                             'missing; add them (see options/train/train_SEGSR_Real_SRx4_gan.yml)')
        unapplied = [f'train.{key}' for key, unset in UNAPPLIED_STEP_OPTIONS.items()
                     if train_opt.get(key, unset) != unset]
        if unapplied:
            raise SegSRError(f'model_type {self.opt["model_type"]} does not apply {", ".join(unapplied)} to its '
                             'generator and discriminator steps; remove them, or train a model without a discriminator')
        self.gan_bands = gan_bands(self.opt)
        self.usm_targets = usm_targets(self.opt)
        self.sharpen = UnsharpMask(eight_bit=Radiometry.of_options(self.opt).is_default)
        self.net_d = self.model_to_device(build_network(self.opt['network_d']))
        self.print_network(self.net_d)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True),
                              self.opt['path'].get('param_key_d', 'params'))
        self.net_g.train()
        self.net_d.train()
        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            self.setup_ema()
        self.cri_pix = build_loss(train_opt['pixel_opt']).to(self.device) if train_opt.get('pixel_opt') else None
        self.cri_ldl = build_loss(train_opt['ldl_opt']).to(self.device) if train_opt.get('ldl_opt') else None
        if self.cri_ldl is not None and self.ema_decay <= 0:
            raise SegSRError('train.ldl_opt compares the output with the EMA generator\'s: set train.ema_decay > 0 '
                             '(e.g. 0.999), or drop ldl_opt')
        perceptual_opt = train_opt.get('perceptual_opt')
        self.cri_perceptual = build_perceptual_loss(perceptual_opt, self.opt['root_path']).to(self.device) \
            if perceptual_opt else None
        self.cri_gan = build_loss(train_opt['gan_opt']).to(self.device)
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)
        self.setup_optimizers()
        self.setup_schedulers()

    def setup_ema(self) -> None:
        """The EMA generator: from ``params_ema`` of a pretrained file, else a copy of the generator."""
        self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
        load_path = self.opt['path'].get('pretrain_network_g')
        if load_path is not None:
            self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True), 'params_ema')
        else:
            self.model_ema(0)
        self.net_g_ema.eval()
        self.performance.prepare_network(self.net_g_ema)

    def setup_optimizers(self) -> None:
        super().setup_optimizers()
        optim_opt = dict(self.opt['train']['optim_d'])
        optim_type = optim_opt.pop('type')
        self.optimizer_d = self.get_optimizer(optim_type, self.net_d.parameters(), **optim_opt)
        self.optimizers.append(self.optimizer_d)

    def feed_data(self, data: dict) -> None:
        """The batch; with per-loss USM keys, also its unsharp-masked HR (made after the pair pool, as Real-ESRGAN
        does, so each target matches its LR)."""
        super().feed_data(data)
        self.gt_usm = self.sharpen(self.gt) if self.usm_targets else None

    def target(self, key: str) -> torch.Tensor:
        """The reference of one loss: the unsharp-masked HR where ``key`` (e.g. ``l1_gt_usm``) says so."""
        return self.gt_usm if self.usm_targets and self.usm_targets[key] else self.gt

    def seen(self, images: torch.Tensor) -> torch.Tensor:
        """The bands the perceptual and GAN terms see."""
        return images if self.gan_bands is None else images[:, list(self.gan_bands)]

    def masked(self, output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Pixels without data (``self.mask`` 0) take the reference's value: no error, no gradient, nothing to
        tell the discriminator."""
        if getattr(self, 'mask', None) is None:
            return output
        return torch.where(self.mask > 0, output, reference.to(output.dtype))

    def discriminate(self, net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        with self.performance.autocast(images, training=True):
            return net(self.seen(images)).float()

    def generator_losses(self, output: torch.Tensor) -> OrderedDict:
        l1_gt, percep_gt, gan_gt = (self.target(key) for key in ('l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm'))
        losses = OrderedDict()
        fake = self.masked(output, l1_gt)
        if self.cri_pix:
            losses['l_g_pix'] = self.cri_pix(fake, l1_gt)
        if self.cri_ldl:
            with torch.no_grad(), self.performance.autocast(self.lq, training=True):
                ema_output = self.masked(self.net_g_ema(self.lq).float(), l1_gt)
            weight = get_refined_artifact_map(l1_gt, fake, ema_output, LDL_KERNEL)
            losses['l_g_ldl'] = self.cri_ldl(weight * fake, weight * l1_gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.seen(self.masked(output, percep_gt)), self.seen(percep_gt))
            if l_percep is not None:
                losses['l_g_percep'] = l_percep
            if l_style is not None:
                losses['l_g_style'] = l_style
        # the bare discriminator: its weights take no gradient here, so DDP has nothing to exchange
        losses['l_g_gan'] = self.cri_gan(self.discriminate(self.get_bare_model(self.net_d),
                                                           self.masked(output, gan_gt)), True, is_disc=False)
        return losses

    def optimize_parameters(self, current_iter: int) -> None:
        """The generator's step (every ``net_d_iters`` iterations after ``net_d_init_iters``), then the
        discriminator's on the generator's output before its step, as basicsr's GAN models do."""
        generator_turn = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        self.net_d.requires_grad_(False)
        generator_log = OrderedDict()
        if generator_turn:
            def accept(losses: OrderedDict) -> bool:
                generator_log.update(self.reduce_loss_dict(losses))
                return self._finite(generator_log)

            self.output, _ = self.performance.train_step(self.net_g, self.optimizer_g, self.lq,
                                                         self.generator_losses, accept=accept)
        else:
            with torch.no_grad(), self.performance.autocast(self.lq, training=True):
                self.output = self.net_g(self.lq).float()
        self.net_d.requires_grad_(True)
        self.last_step_skipped = not self._finite(generator_log)
        self.log_dict = generator_log
        if self.last_step_skipped:
            return
        self.log_dict.update(self.discriminator_step())
        self.last_step_skipped = not self._finite(self.log_dict)
        if generator_turn and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def discriminator_step(self) -> OrderedDict:
        """Real and fake judged one after the other (the discriminator's batch norm sees each alone); the step
        is taken only when both losses are finite on every process. Returns the averaged losses."""
        self.optimizer_d.zero_grad(set_to_none=True)
        gan_gt = self.target('gan_gt_usm')
        real_pred = self.discriminate(self.net_d, gan_gt)
        l_d_real = self.cri_gan(real_pred, True, is_disc=True)
        self.performance.backward(l_d_real)
        fake_pred = self.discriminate(self.net_d, self.masked(self.output.detach(), gan_gt))
        l_d_fake = self.cri_gan(fake_pred, False, is_disc=True)
        self.performance.backward(l_d_fake)
        log = self.reduce_loss_dict(OrderedDict(l_d_real=l_d_real, l_d_fake=l_d_fake,
                                                out_d_real=real_pred.detach().mean(),
                                                out_d_fake=fake_pred.detach().mean()))
        if self._finite(log):
            self.performance.step(self.optimizer_d)
        return log

    @staticmethod
    def _finite(log: OrderedDict) -> bool:
        return all(math.isfinite(value) for value in log.values())

    def save(self, epoch: int, current_iter: int, extra_state: dict | None = None) -> None:
        """The discriminator's weights, then the generator's and the training state (see SegSRModel.save)."""
        self.save_network(self.net_d, 'net_d', current_iter)
        super().save(epoch, current_iter, extra_state)
