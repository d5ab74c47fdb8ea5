"""The training/evaluation model: basicsr's SRModel, device-agnostic and with self-describing checkpoints."""

import math
from collections import OrderedDict
from copy import deepcopy
from os import path as osp

import numpy as np
import torch
import torch.distributed as dist
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel
from tqdm import tqdm

from segsr.data.geotiff import write_float_raster
from segsr.degradations.chain import training_degradation
from segsr.metrics.consistency import project_consistent
from segsr.metrics.inputs import calculate, metric_inputs
from segsr.models.optimizers import build_optimizer, set_training_mode
from segsr.models.perceptual import build_perceptual_loss
from segsr.models.precision import MicroStep, Performance
from segsr.models.step_options import StepOptions
from segsr.models.tiled_forward import check_tile_options, tiled_forward
from segsr.models.validation_rows import add_metric, bicubic_upscale, check_metric_inputs, dataset_classes
from segsr.options.degradation import USM_LOSS_KEYS
from segsr.radiometry.contract import Radiometry
from segsr.self_ensemble import ensemble_mean_and_spread
from segsr.utils.errors import SegSRError
from segsr.utils.report import average_rows, metric_columns
from segsr.utils.training_state import resume_problem
from segsr.weights.card import build_card, validation_results
from segsr.weights.files import (
    atomic_torch_save,
    load_checkpoint,
    load_state_dict_checked,
    save_weights,
    select_state_dict,
    weights_suffix,
)


@MODEL_REGISTRY.register()
class SegSRModel(SRModel):
    """SRModel that runs the same on CPU, one GPU and several, and records per-image validation results.

    Checkpoints hold ``params``/``params_ema`` plus the ``network_g`` options, so a weights file alone
    rebuilds its network; every file is written atomically, by rank 0 only. A step whose loss is NaN
    or infinite (on any process) changes neither the weights, the optimiser nor the EMA;
    ``last_step_skipped`` tells the training loop. Precision, memory layout and compilation follow
    ``train.amp``, ``val.amp`` and ``performance`` (see :mod:`segsr.models.precision`); validation
    runs tile by tile when the options have ``tile`` (see :mod:`segsr.models.tiled_forward`).
    An iteration is one optimiser step over ``micro_step.count`` batches, each fed and passed to
    ``optimize_parameters`` with ``micro_step`` set by the training loop (see :mod:`segsr.models.step_options`).
    """

    last_step_skipped = False
    last_step_clipped = False
    micro_step = MicroStep()

    def __init__(self, opt: dict):
        self.tile = check_tile_options(opt.get('tile'))
        self.performance = Performance.from_options(opt)
        self.performance.apply_backend_flags()
        super().__init__(opt)
        self.degradation = training_degradation(opt, self.device) if self.is_train else None

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        net = self.performance.prepare_network(net.to(self.device))
        find_unused = self.opt.get('find_unused_parameters', False)
        if self.opt['dist']:
            device_ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
                if self.device.type == 'cuda' else None
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def init_training_settings(self) -> None:
        """basicsr's settings, with ``train.perceptual_opt`` built on a local VGG file (basicsr's would fetch one
        or unpickle it in full; see :mod:`segsr.models.perceptual`)."""
        train_opt = self.opt['train']
        per_loss = [key for key in USM_LOSS_KEYS if key in self.opt]
        if per_loss:
            raise SegSRError(f'{", ".join(per_loss)}: read by the GAN model types (SegSRGANModel, RealESRGANModel, '
                             f'RealHATGANModel); model_type {self.opt["model_type"]} sharpens its target by gt_usm: '
                             'drop them or use gt_usm')
        self.step_options = StepOptions.from_options(train_opt)
        perceptual_opt = train_opt.get('perceptual_opt')
        train_opt['perceptual_opt'] = None
        try:
            super().init_training_settings()
        finally:
            train_opt['perceptual_opt'] = perceptual_opt
        if perceptual_opt:
            self.cri_perceptual = build_perceptual_loss(perceptual_opt, self.opt['root_path']).to(self.device)
        if hasattr(self, 'net_g_ema'):
            self.performance.prepare_network(self.net_g_ema)

    def setup_optimizers(self) -> None:
        """Optimise what requires gradients; frozen weights (e.g. the CLIP tower) are summarised, not listed."""
        train_opt = self.opt['train']
        params = list(self.net_g.parameters())
        trainable = [p for p in params if p.requires_grad]
        frozen = sum(p.numel() for p in params if not p.requires_grad)
        if frozen:
            get_root_logger().info(f'{frozen:,} frozen parameters are not optimised.')
        optim_opt = dict(train_opt['optim_g'])
        optim_type = optim_opt.pop('type')
        self.optimizer_g = self.get_optimizer(optim_type, trainable, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        """Any optimiser of the option schema's table, where basicsr builds Adam only."""
        return build_optimizer(optim_type, params, lr, **kwargs)

    def feed_data(self, data: dict) -> None:
        """The batch, and the nodata mask of raster datasets (1 where the reference holds data); a batch of
        HR images alone (no ``lq``) becomes a training pair through :meth:`degrade`."""
        if 'lq' not in data:
            data = self.degrade(data)
        super().feed_data(data)
        self.mask = data['mask'].to(self.device) if 'mask' in data else None

    def degrade(self, data: dict) -> dict:
        """The training pair of an HR-only batch, made on the model's device: the hook of the model types that
        synthesise real-world degradations, and of ``datasets.train.degradation`` (see
        :mod:`segsr.degradations.chain`)."""
        if self.degradation is not None:
            return self.degradation.degrade_batch(data, self.device)
        raise SegSRError(f'the training batch holds HR images only and model_type {self.opt.get("model_type")} '
                         'makes no LR images from them: use a paired dataset (dataroot_lq) or one that makes '
                         'its LR (RSOnTheFlyDataset)')

    def compute_losses(self, output: torch.Tensor) -> OrderedDict:
        """The configured losses of ``output`` against ``self.gt``, by log name; pixels without data
        (``self.mask`` 0) take the reference's value, so they add no error and no gradient."""
        if getattr(self, 'mask', None) is not None:
            output = torch.where(self.mask > 0, output, self.gt.to(output.dtype))
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(output, self.gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, self.gt)
            if l_percep is not None:
                losses['l_percep'] = l_percep
            if l_style is not None:
                losses['l_style'] = l_style
        return losses

    def optimize_parameters(self, current_iter: int) -> None:
        """Forward under ``train.amp`` autocast, losses in float32, backward, and on the last micro-batch the
        step through the fp16 scaler (gradients clipped to ``train.grad_clip_max_norm``) and the EMA update;
        a step whose losses are not finite on some process is skipped on all."""
        set_training_mode(self.optimizers, training=True)
        max_norm = self.step_options.grad_clip_max_norm
        self.output, _ = self.performance.train_step(self.net_g, self.optimizer_g, self.lq, self.compute_losses,
                                                     accept=self._losses_finite, micro=self.micro_step,
                                                     max_norm=max_norm)
        if not self.micro_step.last or self.last_step_skipped:
            return
        grad_norm = self.performance.grad_norm
        self.last_step_clipped = grad_norm is not None and grad_norm > max_norm
        if grad_norm is not None:
            self.log_dict['grad_norm'] = grad_norm
        if self.ema_decay > 0:
            self.update_ema(current_iter)

    def update_ema(self, current_iter: int) -> None:
        """Up to ``train.ema_start_iter`` the EMA network is a copy of the trained one; after it, their average."""
        if current_iter <= self.step_options.ema_start_iter:
            self.net_g_ema.load_state_dict(self.get_bare_model(self.net_g).state_dict())
        else:
            self.model_ema(decay=self.ema_decay)

    def _losses_finite(self, losses: OrderedDict) -> bool:
        """Every process has run backward (so DDP's gradient exchange stays in step) before the losses are
        averaged over processes and logged; with accumulation, over the step's micro-batches so far, and one
        non-finite micro-batch skips the step."""
        reduced = self.reduce_loss_dict(losses)
        self._micro_logs = [reduced] if self.micro_step.first else [*self._micro_logs, reduced]
        self.log_dict = reduced if len(self._micro_logs) == 1 else OrderedDict(
            (name, sum(log[name] for log in self._micro_logs) / len(self._micro_logs)) for name in reduced)
        self.last_step_skipped = not all(math.isfinite(value) for log in self._micro_logs for value in log.values())
        self.last_step_clipped = False
        return not self.last_step_skipped

    def reduce_loss_dict(self, loss_dict: OrderedDict) -> OrderedDict:
        """Losses averaged over every process, on every process, so all agree on skipping a non-finite step."""
        with torch.no_grad():
            values = torch.stack([value.detach().float().mean() for value in loss_dict.values()])
            if self.opt['dist']:
                dist.all_reduce(values)
                values /= self.opt['world_size']
        return OrderedDict(zip(loss_dict, values.tolist(), strict=True))

    def test(self) -> None:
        """Inference under ``val.amp`` autocast (and ``val.self_ensemble``) without the DDP wrapper, whose buffer
        broadcast would wait for processes not validating."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        val_opt = self.opt.get('val') or {}
        with torch.no_grad(), self.performance.autocast(self.lq, training=False):
            if val_opt.get('self_ensemble', False):
                output, self.spread = ensemble_mean_and_spread(lambda lq: self.run_network(net, lq), self.lq)
                self.output = output.float()
            else:
                self.output = self.run_network(net, self.lq)
            if val_opt.get('enforce_consistency', False):
                self.output = project_consistent(self.output.float(), self.lq.float(), self.opt['scale'])
        net.train(was_training)

    def run_network(self, net: torch.nn.Module, lq: torch.Tensor) -> torch.Tensor:
        """The whole image at once, or through the tiled engine when the options have ``tile``."""
        if self.tile is None:
            return net(lq).float()
        return tiled_forward(net, lq, self.opt['scale'], *self.tile)

    def save(self, epoch: int, current_iter: int, extra_state: dict | None = None) -> None:
        """Save the weights, then the training state (plus ``extra_state``): a state never outlives its weights.
        Schedule-free optimisers are in evaluation mode, so the averaged weights are those saved."""
        set_training_mode(self.optimizers, training=False)
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        self.save_training_state(epoch, current_iter, extra_state)

    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True,
                     param_key: str | None = 'params') -> None:
        checkpoint = load_checkpoint(load_path)
        state_dict = select_state_dict(checkpoint, param_key, load_path)
        get_root_logger().info(f'Loading {type(self.get_bare_model(net)).__name__} from {load_path} [{param_key}].')
        load_state_dict_checked(self.get_bare_model(net), state_dict, strict, load_path)

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        checkpoint = {
            key: {name: tensor.cpu() for name, tensor in self.get_bare_model(module).state_dict().items()}
            for module, key in zip(nets, keys, strict=True)
        }
        network_opt = self.opt.get(f'network_{net_label.removeprefix("net_")}')
        if network_opt is not None:
            checkpoint[f'network_{net_label.removeprefix("net_")}'] = deepcopy(network_opt)
        if self.opt.get('contract') is not None:
            checkpoint['radiometry'] = deepcopy(self.opt['contract'])
        if net_label == 'net_g':
            last = getattr(self, 'last_validation', (None, None))
            validation = validation_results(getattr(self, 'best_metric_results', None), last[1], last[0])
            checkpoint['card'] = build_card(self.opt, self.get_bare_model(nets[0]), validation)
        iteration = 'latest' if current_iter == -1 else current_iter
        suffix = weights_suffix(self.opt)
        if suffix != '.pth':
            checkpoint['options'] = self.opt
            if current_iter == -1 and len(keys) > 1:  # the final product: its inference weights alone, bare
                checkpoint = {key: value for key, value in checkpoint.items() if key not in keys[:-1]}
        save_weights(checkpoint, osp.join(self.opt['path']['models'], f'{net_label}_{iteration}{suffix}'))

    @master_only
    def save_training_state(self, epoch: int, current_iter: int, extra_state: dict | None = None) -> None:
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [optimizer.state_dict() for optimizer in self.optimizers],
            'schedulers': [scheduler.state_dict() for scheduler in self.schedulers],
            'grad_scaler': self.performance.scaler(self.device).state_dict(),
            **({'degradation': self.degradation.state_dict()} if getattr(self, 'degradation', None) else {}),
            **(extra_state or {}),
        }
        atomic_torch_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state: dict) -> None:
        problem = resume_problem(self.optimizers, self.schedulers, resume_state)
        if problem:
            raise SegSRError(f'training state {self.opt["path"].get("resume_state")} does not fit this run: {problem}; '
                             'resume from a state of this experiment, or start afresh without path.resume_state')
        super().resume_training(resume_state)
        if resume_state.get('grad_scaler'):
            self.performance.scaler(self.device).load_state_dict(resume_state['grad_scaler'])
        if getattr(self, 'degradation', None) and 'degradation' in resume_state:
            self.degradation.load_state_dict(resume_state['degradation'])

    def validation(self, dataloader, current_iter: int, tb_logger, save_img: bool = False) -> list[dict]:
        """Validate on rank 0 and return its per-image rows (metrics, bicubic metrics, class); [] elsewhere.
        Every process puts schedule-free optimisers in evaluation mode, so their weights stay the same."""
        set_training_mode(self.optimizers, training=False)
        if self.opt['dist'] and self.opt['rank'] != 0:
            return []
        return self.nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter: int, tb_logger, save_img: bool) -> list[dict]:
        dataset_name = dataloader.dataset.opt['name']
        val_opt = self.opt['val']
        metrics_opt = val_opt.get('metrics') or {}
        compare_bicubic = val_opt.get('compare_bicubic', False)
        if metrics_opt:
            self._initialize_best_metric_results(dataset_name)

        contract = getattr(dataloader.dataset, 'contract', None)
        check_metric_inputs(metrics_opt, val_opt, raster=contract is not None)
        class_names = dataset_classes(dataloader.dataset) if any(
            'class_names' in metric_inputs(opt) for opt in metrics_opt.values()) else None
        rows = []
        for val_data in tqdm(dataloader, desc=f'Validate {dataset_name}', unit='image',
                             disable=not val_opt.get('pbar', True), leave=False):
            img_name = val_data['name'][0] if 'name' in val_data else \
                osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            sr_img = tensor2img([self.output.detach().cpu()]) if contract is None else None
            row = OrderedDict(image=img_name)
            if 'class' in val_data:
                row['class'] = val_data['class'][0]
            images, inputs = self._scored_images(contract, sr_img, compare_bicubic)
            if 'class' in row and class_names:
                inputs |= {'label': row['class'], 'class_names': class_names}
            if hasattr(self, 'spread'):
                inputs['spread'] = self.spread[0].detach().float().cpu().permute(1, 2, 0).numpy()
                del self.spread
            for prefix, image in images.items():
                for metric, metric_opt in metrics_opt.items():
                    needs = metric_inputs(metric_opt)
                    if needs <= inputs.keys() and not (prefix and 'spread' in needs):  # the spread is the network's
                        add_metric(row, f'{prefix}{metric}', calculate(metric_opt, {**inputs, 'img': image}))
            if save_img and contract is None:
                imwrite(sr_img, self._image_path(dataset_name, img_name, current_iter))
            elif save_img:
                physical = contract.to_physical(self.output[0].detach().float().cpu().numpy()).astype(np.float32)
                write_float_raster(self._image_path(dataset_name, img_name, current_iter, '.tif'), physical)
            rows.append(row)
            del self.lq, self.output

        if not metrics_opt or not rows:
            return rows
        averages = average_rows(rows, metric_columns(rows))
        self.metric_results = {metric: averages[metric] for metric in metrics_opt if metric in averages}
        for metric, value in self.metric_results.items():
            self._update_best_metric_result(dataset_name, metric, value, current_iter)
        self.last_validation = (dataset_name, dict(self.metric_results))
        self._log_validation(dataset_name, len(rows), averages, current_iter, tb_logger)
        return rows

    def _scored_images(self, contract: Radiometry | None, sr_img, compare_bicubic: bool) -> tuple[dict, dict]:
        """The images to score by prefix (the network's '', and 'bicubic_' when compared against a reference) and
        the inputs metrics may take: 8-bit images, or a raster dataset's physical values through its contract
        with the per-band data range, the scale and the nodata mask."""
        scale = self.opt['scale']
        has_reference = hasattr(self, 'gt')
        if contract is None:
            images = {'': sr_img}
            inputs = {'lq': tensor2img([self.lq.detach().cpu()])}
            if has_reference:
                inputs['img2'] = tensor2img([self.gt.detach().cpu()])
                if compare_bicubic:
                    images['bicubic_'] = tensor2img([bicubic_upscale(self.lq, scale)])
        else:
            images = {'': contract.to_physical(self.output[0].detach().float().cpu().numpy())}
            inputs = {'scale': scale}
            if has_reference:
                reference = contract.to_physical(self.gt[0].detach().float().cpu().numpy())
                inputs |= {'img2': reference, 'data_range': contract.span(reference.shape[0]),
                           'mask': self.mask[0, 0].cpu().numpy() > 0 if self.mask is not None else None}
                if compare_bicubic:
                    bicubic = bicubic_upscale(self.lq, scale, clamp=False)
                    images['bicubic_'] = contract.to_physical(bicubic[0].numpy())
        if has_reference:
            del self.gt
        return images, inputs

    def _image_path(self, dataset_name: str, img_name: str, current_iter: int, extension: str = '.png') -> str:
        visualization = self.opt['path']['visualization']
        if self.opt['is_train']:
            return osp.join(visualization, img_name, f'{img_name}_{current_iter}{extension}')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return osp.join(visualization, dataset_name, f'{img_name}_{suffix}{extension}')

    def _log_validation(self, dataset_name: str, images: int, averages: dict, current_iter: int, tb_logger) -> None:
        lines = [f'Validation {dataset_name} ({images} images)']
        for metric, value in self.metric_results.items():
            line = f'\t # {metric}: {value:.4f}'
            if f'bicubic_{metric}' in averages:
                line += f' (bicubic {averages[f"bicubic_{metric}"]:.4f})'
            best = self.best_metric_results[dataset_name][metric]
            line += f'\tBest: {best["val"]:.4f} @ {best["iter"]} iter'
            lines.append(line)
        get_root_logger().info('\n'.join(lines))
        if tb_logger:
            for metric, value in self.metric_results.items():
                tb_logger.add_scalar(f'metrics/{dataset_name}/{metric}', value, current_iter)
