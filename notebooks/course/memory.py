"""Will a training step fit on the GPU? The peak-memory estimate each training notebook prints,
and the batch it chooses so that a Colab T4 (16 GB) holds the step.

    from course import memory
    batch = memory.plan_batch(model, 128, image_size=224, config=recipe, label="improved recipe")
    batch = memory.plan_batch(memory.meta_vit(ViTConfig.vit_b_16()), 64, 224, recipe)  # no weights needed

The estimate of one training step's peak GPU memory, in bytes, is

    weights + gradients + optimizer state    4 + 4 + (8 Adam/AdamW | 4 SGD+momentum) bytes per
                                             trainable parameter, 4 per frozen one (all float32)
  + activations(batch)                       measured: the bytes of every tensor autograd saves for
                                             the backward pass during one forward pass at batch 1
                                             and at batch 2, under the step's autocast dtype, fitted
                                             as fixed + batch x per-image (parameters excluded)
  + OVERHEAD_GB                              CUDA context, cuBLAS workspace, allocator slack

On a T4 the autocast dtype is float16 (vit_core.train.amp_dtype: no native bfloat16 below
compute capability 8.0). For ViT-B/16 at 224 px the measured activations come to about
39 bytes per token and channel per block (tests/test_memory.py). Korthikanti et al. (2022)
count 34 for a 16-bit transformer block with dropout (2 of the 34 are its masks, which ViT-B/16
has none of) and without the attention scores, which a fused kernel does not keep; under
autocast the residual stream, which LayerNorm saves, stays float32, so this measures more.
tools/gpu_check.py records the real peak beside this estimate.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from vit_core.train import AMP_DTYPES, TrainConfig, count_parameters

from . import env

GB = 1e9
T4_LIMIT_GB = 15.0   # a T4 has 16 GB (15.1 GiB usable); keep a step under 15
OVERHEAD_GB = 1.0    # CUDA context (~0.4 GB), cuBLAS workspace and the caching allocator's slack
OPTIMIZER_STATE_BYTES = {"adamw": 8, "adam": 8, "sgd": 4}  # per trainable parameter (two moments / momentum)


@dataclass
class StepMemory:
    """Bytes of one training step: static (weights, gradients, optimizer state) + activations."""
    static: float
    fixed_activations: float
    per_image: float

    def peak(self, batch_size: int) -> float:
        return self.static + self.fixed_activations + batch_size * self.per_image + OVERHEAD_GB * GB


class _MetaStep(TorchFunctionMode):
    """What the meta device lacks to stand in for a GPU: autocast's casting rules (matrix
    products in `dtype`, normalisations and softmaxes in float32, the rest as it comes; None
    casts nothing) and a fused attention kernel (flash or memory-efficient, as a T4 or a CPU
    runs), which keeps q, k, v, its output and a float32 log-sum-exp per query row for the
    backward pass, never the (N x N) attention weights that the math fallback would keep."""
    LOW = {F.linear, F.conv2d, F.scaled_dot_product_attention, torch.matmul, torch.bmm, torch.addmm,
           torch.baddbmm, torch.Tensor.matmul, torch.Tensor.__matmul__}
    FLOAT32 = {F.layer_norm, F.softmax, F.log_softmax, torch.softmax, torch.Tensor.softmax, F.cross_entropy}

    def __init__(self, dtype, keep):
        super().__init__()
        self.dtype, self.keep = dtype, keep

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = None if self.dtype is None else self.dtype if func in self.LOW else (
            torch.float32 if func in self.FLOAT32 else None)
        if target is not None:
            cast = lambda t: t.to(target) if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
            args, kwargs = [cast(a) for a in args], {k: cast(v) for k, v in kwargs.items()}
        if func is F.scaled_dot_product_attention:
            return self.fused_attention(func, args, kwargs)
        return func(*args, **kwargs)

    def fused_attention(self, func, args, kwargs):
        with torch.no_grad():
            out = func(*args, **kwargs)  # (B, heads, N, head_dim)
        q, k, v = args[:3]
        if not any(t.requires_grad for t in (q, k, v)):
            return out  # a frozen block: nothing is kept for a backward pass
        for tensor in (q, k, v, out, torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)):
            self.keep(tensor)
        return out.requires_grad_()


def meta_copy(model: nn.Module) -> nn.Module:
    """`model` on the meta device (shapes only, no memory, no arithmetic), with the same
    requires_grad flags; the original is untouched and nothing is copied."""
    memo = {id(t): (nn.Parameter(torch.empty_like(t, device="meta"), requires_grad=t.requires_grad)
                    if isinstance(t, nn.Parameter) else torch.empty_like(t, device="meta"))
            for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo)


def saved_bytes(model, images: torch.Tensor, dtype: torch.dtype | None) -> int:
    """Bytes of the tensors autograd keeps for backward during one forward pass of `images`
    under autocast `dtype` (each storage counted once; parameters, counted as weights, are
    left out). On the meta device _MetaStep stands in for autocast and a fused attention kernel."""
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage._cdata not in params:
            storages[storage._cdata] = storage  # held, so that no other storage takes its address
        return tensor

    device = images.device.type
    if device == "meta":
        cast = _MetaStep(dtype, pack)
    else:
        cast = torch.autocast(device, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), cast:
        model(images)
    return sum(storage.nbytes() for storage in storages.values())


def step_memory(model, image_size: int, config: TrainConfig, dtype: torch.dtype | None,
                device: str = "meta") -> StepMemory:
    """Measure StepMemory for `model` at `image_size` px under autocast `dtype` (None: float32),
    by default on the meta device: instant, whatever the model's size."""
    trainable, total = count_parameters(model)
    static = trainable * (8 + OPTIMIZER_STATE_BYTES[config.optimizer]) + (total - trainable) * 4
    probe = (meta_copy(model) if device == "meta" else copy.deepcopy(model).to(device)).train()
    one, two = (saved_bytes(probe, torch.randn(b, 3, image_size, image_size, device=device), dtype) for b in (1, 2))
    return StepMemory(static=float(static), fixed_activations=float(2 * one - two), per_image=float(two - one))


def meta_vit(config) -> nn.Module:
    """vit_core's ViT(config) on the meta device: shapes only, built at once, for estimates."""
    from vit_core import ViT

    with torch.device("meta"):
        return ViT(config)


def t4_dtype(config: TrainConfig) -> torch.dtype | None:
    """The autocast dtype `config` gets on a T4: its override, else float16 when amp is on."""
    if not config.amp:
        return None
    return AMP_DTYPES[config.amp_dtype] if config.amp_dtype else torch.float16


def _size(nbytes: float) -> str:
    """'1.37 GB' from 0.1 GB up, else '3.3 MB' (a small model's state would print as 0.00 GB)."""
    return f"{nbytes / GB:.2f} GB" if nbytes >= 0.1 * GB else f"{nbytes / 1e6:.1f} MB"


def largest_fitting(memory: StepMemory, batch_size: int, limit_gb: float) -> int:
    """batch_size if its step fits under limit_gb, else the largest halving of it that does."""
    batch = batch_size
    while batch > 1 and memory.peak(batch) > limit_gb * GB:
        batch //= 2
    return batch


def estimate(model, batch_size: int, image_size: int, config: TrainConfig, label: str = "training step",
             limit_gb: float = T4_LIMIT_GB) -> int:
    """Print the estimated peak GPU memory of `label`'s step at `batch_size` on a T4; return
    `batch_size` if the step fits under `limit_gb`, else the largest halving that does."""
    dtype = t4_dtype(config)
    memory = step_memory(model, image_size, config, dtype)
    batch = largest_fitting(memory, batch_size, limit_gb)
    name = str(dtype).replace("torch.", "") if dtype else "float32"
    print(f"{label}: estimated peak GPU memory at batch {batch_size}, {image_size} px, {name} on a T4: "
          f"{memory.peak(batch_size) / GB:.1f} GB (weights + grads + {config.optimizer} state "
          f"{_size(memory.static)}, activations {_size(memory.per_image)} per image, "
          f"+{OVERHEAD_GB:.0f} GB overhead) -> batch {batch} "
          + ("fits" if batch == batch_size else f"(halved to fit {limit_gb:.0f} GB)")
          + f" under {limit_gb:.0f} GB")
    return batch


def plan_batch(model, batch_size: int, image_size: int, config: TrainConfig, label: str = "training step",
               limit_gb: float = T4_LIMIT_GB) -> int:
    """`estimate`, then the batch to train with: in a fast dev run at most course.env's
    FAST_DEV_BATCH images (said in the output)."""
    batch = estimate(model, batch_size, image_size, config, label, limit_gb)
    if env.dev_cap(batch) != batch:
        print(f"fast dev run: batch {batch} -> {env.dev_cap(batch)}")
    return env.dev_cap(batch)
