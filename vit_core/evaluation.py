"""Mixed precision and evaluation: which autocast dtype a device gets, and the loss,
accuracy and predictions of a model over a whole loader (optionally with flip test-time
augmentation)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def amp_dtype(device, override: str | None = None) -> torch.dtype | None:
    """The autocast dtype on `device`: `override` ('bfloat16' | 'float16') on any device if
    given; else bfloat16 on GPUs with native bfloat16 tensor cores (compute capability >= 8.0:
    A100, L4, H100, ...), float16 on older GPUs (T4, V100; fit adds a gradient scaler), and
    None (float32) on the CPU."""
    if override is not None:
        if override not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be None or one of {tuple(AMP_DTYPES)}, "
                             f"got {override!r}")
        return AMP_DTYPES[override]
    device = torch.device(device)
    if device.type != "cuda":
        return None
    native_bf16 = (torch.cuda.get_device_capability(device)[0] >= 8
                   and torch.cuda.is_bf16_supported())
    return torch.bfloat16 if native_bf16 else torch.float16


def autocast(device: torch.device, amp: bool, override: str | None = None):
    dtype = amp_dtype(device, override) if amp else None
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def _model_device(model: nn.Module, device) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


@torch.inference_mode()
def _outputs(model, loader, device, amp=True, max_batches=None, dtype=None, flip=False):
    """Yield (logits float32, labels) for every batch, in eval mode; the mode is restored.
    flip=True averages the logits of each image and its mirror image (test-time augmentation)."""
    was_training = model.training
    model.eval()
    try:
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, amp, dtype):
                logits = model(x).float()
                if flip:
                    logits = (logits + model(x.flip(-1)).float()) / 2
            yield logits, y
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, loader, device=None, amp: bool = True,
             max_batches: int | None = None, amp_dtype: str | None = None,
             flip: bool = False) -> dict:
    """{'loss': mean cross-entropy (no label smoothing), 'acc': fraction correct in [0, 1]}.
    flip=True scores the mean logits of each image and its mirror image (flip TTA)."""
    device = _model_device(model, device)
    loss = torch.zeros((), device=device, dtype=torch.float64)
    correct, n = torch.zeros((), device=device, dtype=torch.int64), 0
    for logits, y in _outputs(model, loader, device, amp, max_batches, amp_dtype, flip):
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(-1) == y).sum()
        n += len(y)
    return {"loss": loss.item() / max(n, 1), "acc": correct.item() / max(n, 1)}


def predict(model: nn.Module, loader, device=None,
            amp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes, true labels) for a whole loader, as CPU int64 tensors."""
    device = _model_device(model, device)
    preds, labels = [], []
    for logits, y in _outputs(model, loader, device, amp):
        preds.append(logits.argmax(-1).cpu())
        labels.append(y.cpu())
    return torch.cat(preds).long(), torch.cat(labels).long()
