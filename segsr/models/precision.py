"""How a network runs: autocast precision, fp16 grad scaling, channels_last, TF32 and torch.compile.

Options (basicsr YAML):

    train:
      amp: bf16            # bf16 | fp16 | off: autocast of the training forward; fp16 adds a GradScaler
    val:
      amp: bf16            # autocast of validation and test; default: train.amp, off without a train section
    performance:
      channels_last: false # convs of the network and its 4-D inputs in channels_last memory format
      tf32: false          # TF32 tensor cores for float32 matmuls and convs (CUDA, Ampere and newer)
      compile: false       # true, or {mode: default|reduce-overhead|max-autotune, dynamic: false|true|null}

Compiling uses size buckets: of a network that pads its input to ``pad_multiple`` itself (HAT, SEGSR:
``segsr.nn.padding.PadsInput``) only ``forward_padded`` is compiled, after the padding and before the
crop, so the compiled graph only sees padded sizes and the result is unchanged. Validation images of
one dataset mostly share a padded size, so they compile once and not once per image.

Everything is device-agnostic: autocast takes its device type from the tensors it sees.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segsr.nn.padding import PadsInput
from segsr.utils.errors import SegSRError

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'off': None}
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


def amp_dtype(value: str | bool | None, key: str) -> torch.dtype | None:
    """The autocast dtype an ``amp`` option names (YAML may spell ``off`` as false)."""
    name = 'off' if value in (None, False) else value
    if name not in AMP_DTYPES:
        raise SegSRError(f'{key} is {value!r}; use one of {", ".join(AMP_DTYPES)}')
    return AMP_DTYPES[name]


def compile_options(value: bool | dict | None) -> dict | None:
    """``torch.compile`` keyword arguments from ``performance.compile``, or None when compiling is off.

    Key names and kinds are checked by the option schema; this checks the mode's value.
    """
    if value in (None, False):
        return None
    options = {} if value is True else value
    if options.get('mode', 'default') not in COMPILE_MODES:
        raise SegSRError(f'performance.compile.mode is {options["mode"]!r}; use one of {list(COMPILE_MODES)}')
    return {'mode': options.get('mode', 'default'), 'dynamic': options.get('dynamic', False),
            'fullgraph': bool(options.get('fullgraph', False))}


@dataclass(frozen=True)
class MicroStep:
    """Which of the ``count`` micro-batches of one optimiser step a forward/backward is (``train.accum_iter``)."""

    index: int = 0
    count: int = 1

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def last(self) -> bool:
        return self.index == self.count - 1


@dataclass
class Performance:
    """The speed-related options of one run, read once from the option dict."""

    train_amp: torch.dtype | None = None
    eval_amp: torch.dtype | None = None
    channels_last: bool = False
    tf32: bool = False
    compile: dict | None = None
    scalers: dict = field(default_factory=dict, repr=False)
    grad_norm: float | None = field(default=None, repr=False)  # of the last step, before clipping; None: not clipped

    @classmethod
    def from_options(cls, opt: dict) -> 'Performance':
        perf = opt.get('performance') or {}
        train_amp = amp_dtype((opt.get('train') or {}).get('amp'), 'train.amp')
        val_opt = opt.get('val') or {}
        eval_amp = amp_dtype(val_opt['amp'], 'val.amp') if 'amp' in val_opt else train_amp
        return cls(train_amp=train_amp, eval_amp=eval_amp, channels_last=bool(perf.get('channels_last', False)),
                   tf32=bool(perf.get('tf32', False)), compile=compile_options(perf.get('compile')))

    def apply_backend_flags(self) -> None:
        """TF32 for float32 matmuls (torch.matmul, linear) and cuDNN convolutions; no effect on CPU."""
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32

    def prepare_network(self, net: nn.Module) -> nn.Module:
        """Memory layout and compilation of a bare network, in place (parameter names do not change)."""
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
            net.register_forward_pre_hook(_inputs_to_channels_last)
        if self.compile is not None and isinstance(net, PadsInput):
            net.forward_padded = torch.compile(net.forward_padded, **self.compile)
        elif self.compile is not None:
            net.forward = torch.compile(net.forward, **self.compile)
        return net

    @contextmanager
    def autocast(self, reference: torch.Tensor, training: bool) -> Iterator[None]:
        """Autocast on ``reference``'s device in the training or evaluation dtype (nothing when off)."""
        dtype = self.train_amp if training else self.eval_amp
        context = nullcontext() if dtype is None else torch.autocast(reference.device.type, dtype=dtype)
        with context:
            yield

    def scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """The loss scaler of the training step: active for fp16 only, a pass-through otherwise."""
        if device.type not in self.scalers:
            enabled = self.train_amp == torch.float16
            self.scalers[device.type] = torch.amp.GradScaler(device.type, enabled=enabled)
        return self.scalers[device.type]

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, with the loss scaled first when training in fp16."""
        self.scaler(loss.device).scale(loss).backward()

    def train_step(self, net: nn.Module, optimizer: torch.optim.Optimizer, lq: torch.Tensor,
                   losses_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                   accept: Callable[[dict[str, torch.Tensor]], bool] | None = None,
                   micro: MicroStep = MicroStep(), max_norm: float | None = None) -> tuple[torch.Tensor, dict]:
        """One forward/backward: forward under the training autocast, losses of the float32 output, backward of
        their sum; on the last micro-batch of a step the optimizer steps (gradients clipped to ``max_norm``)
        unless ``accept`` refuses the losses. Returns output and losses.

        With several micro-batches (``micro.count``) each loss is divided by their count, so the summed
        gradients are those of the mean loss over the larger batch; gradients are zeroed on the first
        and DDP exchanges them on the last only. The training model, the benchmark and the loss-curve
        comparison all step through here, so the numbers they report are those of the same step."""
        if micro.first:
            optimizer.zero_grad(set_to_none=True)
        syncing = micro.last or not isinstance(net, DistributedDataParallel)
        with nullcontext() if syncing else net.no_sync():
            with self.autocast(lq, training=True):
                output = net(lq)
            output = output.float()
            losses = losses_of(output)
            total = sum(losses.values())
            self.backward(total / micro.count if micro.count > 1 else total)
        accepted = accept is None or accept(losses)
        if micro.last and accepted:
            self.step(optimizer, max_norm)
        return output, losses

    def step(self, optimizer: torch.optim.Optimizer, max_norm: float | None = None) -> None:
        """``optimizer.step()``; in fp16 gradients are unscaled first, and a step with inf/NaN gradients is
        skipped while the scale shrinks. With ``max_norm`` the gradients' global 2-norm is clipped to it first
        and kept in ``grad_norm`` (as it was before clipping)."""
        params = [p for group in optimizer.param_groups for p in group['params']]
        scaler = self.scaler(params[0].device)
        self.grad_norm = None
        if max_norm is not None:
            scaler.unscale_(optimizer)
            self.grad_norm = float(torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None],
                                                                  max_norm))
        scaler.step(optimizer)
        scaler.update()


def _inputs_to_channels_last(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.contiguous(memory_format=torch.channels_last) if isinstance(a, torch.Tensor) and a.dim() == 4
                 else a for a in args)
