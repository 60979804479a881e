"""The training loop every notebook uses, and the fine-tuning helpers.

`fit` trains in place: AdamW/Adam/SGD, linear warmup then cosine decay per step, label
smoothing, gradient clipping, bf16 autocast on CUDA (fp32 on the CPU), optional
torch.compile. With `out_dir` it writes checkpoint.pt and history.json after every epoch,
atomically, and `resume=True` continues an interrupted run to the same weights and
history as an uninterrupted one (bit for bit on the CPU).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import env


@dataclass
class TrainConfig:
    epochs: int = 10                   # passes over the training loader
    lr: float = 1e-3                   # peak learning rate, reached at the end of warmup
    weight_decay: float = 0.05         # decoupled for AdamW; plain L2 for Adam and SGD
    optimizer: str = "adamw"           # 'adamw' | 'adam' | 'sgd'
    momentum: float = 0.9              # SGD only
    warmup_epochs: float = 1.0         # linear warmup length, in epochs (fractions allowed)
    schedule: str = "cosine"           # after warmup: 'cosine' decay to 0 | 'constant'
    label_smoothing: float = 0.0       # probability mass spread over all classes in the loss
    grad_clip: float | None = 1.0      # max global gradient L2 norm; None = no clipping
    amp: bool = True                   # bf16 autocast on CUDA only; the CPU always runs fp32
    compile: bool = False              # torch.compile the model before training
    seed: int = 0                      # seeds torch's RNG (dropout, DataLoader shuffles)
    max_steps_per_epoch: int | None = None  # cap on steps per epoch, for smoke budgets


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


# ---------------------------------------------------------------- fine-tuning helpers

def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameter elements."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def freeze_all_but_last(model: nn.Module, k: int) -> None:
    """Train only the last `k` encoder blocks, the final LayerNorm and the head."""
    if not 0 <= k <= len(model.blocks):
        raise ValueError(f"k must lie in [0, {len(model.blocks)}], got {k}")
    model.requires_grad_(False)
    for module in [*model.blocks[len(model.blocks) - k:], model.norm, model.head]:
        module.requires_grad_(True)


def replace_head(model: nn.Module, num_classes: int) -> None:
    """A new zero-initialised head for `num_classes` (zero, as the ViT paper fine-tunes:
    every class starts at the same logit, so no class is favoured by a random init)."""
    old = model.head
    model.head = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)
    if hasattr(model, "config") and hasattr(model.config, "num_classes"):
        from dataclasses import replace
        model.config = replace(model.config, num_classes=num_classes)


# ---------------------------------------------------------------- optimiser and schedule

def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Weight decay only on matrices: decaying biases, LayerNorm gains and the position and
    CLS embeddings toward zero only hurts (the convention of ViT and BERT training)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name in ("pos_embed", "cls_token") else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {}  # one kernel for all tensors
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, **fused)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, **fused)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd', got {config.optimizer!r}")


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak lr at `step` (0-based): linear warmup, then cosine or flat."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------- evaluation

def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def _model_device(model: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    return next(model.parameters()).device


@torch.inference_mode()
def _outputs(model, loader, device, amp=True):
    """Yield (logits float32, labels) for every batch, in eval mode; the mode is restored."""
    was_training = model.training
    model.eval()
    try:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, amp):
                logits = model(x)
            yield logits.float(), y
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, loader, device=None, amp: bool = True) -> dict:
    """{'loss': mean cross-entropy (no label smoothing), 'acc': fraction correct in [0, 1]}."""
    device = _model_device(model, device)
    loss = torch.zeros((), device=device, dtype=torch.float64)
    correct, n = torch.zeros((), device=device, dtype=torch.int64), 0
    for logits, y in _outputs(model, loader, device, amp):
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(-1) == y).sum()
        n += len(y)
    return {"loss": loss.item() / max(n, 1), "acc": correct.item() / max(n, 1)}


def predict(model: nn.Module, loader, device=None, amp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes, true labels) for a whole loader, as CPU int64 tensors."""
    device = _model_device(model, device)
    preds, labels = [], []
    for logits, y in _outputs(model, loader, device, amp):
        preds.append(logits.argmax(-1).cpu())
        labels.append(y.cpu())
    return torch.cat(preds).long(), torch.cat(labels).long()


# ---------------------------------------------------------------- checkpoints

def _save_atomic(write, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: an interrupt (Ctrl-C, a killed
    Colab) leaves the previous file whole, never a truncated one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _rng_state(train_loader) -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if hasattr(train_loader, "state_dict"):
        state["loader"] = train_loader.state_dict()
    return state


def _set_rng_state(state: dict, train_loader) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "loader" in state and hasattr(train_loader, "load_state_dict"):
        train_loader.load_state_dict(state["loader"])


def save_checkpoint(out_dir: Path, model, optimizer, history, config, step, steps_per_epoch, train_loader) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": len(history),
             "step": step, "steps_per_epoch": steps_per_epoch, "history": history, "config": asdict(config),
             "rng": _rng_state(train_loader)}
    _save_atomic(lambda p: torch.save(state, p), out_dir / "checkpoint.pt")
    _save_atomic(lambda p: p.write_text(json.dumps(history, indent=1)), out_dir / "history.json")


def _mismatch(state: dict, model, config, steps_per_epoch: int) -> str | None:
    """Why a checkpoint cannot continue this run (None if it can)."""
    changed = {k: (v, getattr(config, k, None)) for k, v in state["config"].items() if getattr(config, k, None) != v}
    if changed:
        return f"its TrainConfig differs (saved, now): {changed}"
    if state["steps_per_epoch"] != steps_per_epoch:
        return f"it ran {state['steps_per_epoch']} steps per epoch, this loader gives {steps_per_epoch}"
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if mine != {k: tuple(v.shape) for k, v in state["model"].items()}:
        return "its weights do not fit this model"
    return None


def _restore(path: Path, model, optimizer, config, steps_per_epoch, train_loader) -> list[dict]:
    """Load a checkpoint written by fit() and return its history; if it belongs to another
    run (config, data size or model changed), warn and return [] so training starts afresh:
    continuing it would silently mix two different runs."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    problem = _mismatch(state, model, config, steps_per_epoch)
    if problem:
        warnings.warn(f"not resuming from {path}: {problem}; training from scratch and overwriting it")
        return []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    _set_rng_state(state["rng"], train_loader)
    return state["history"]


# ---------------------------------------------------------------- the loop

def _flush(pending, epoch, step, out_dir):
    """Check the queued losses (one GPU sync for several steps); stop on the first bad one."""
    values = torch.stack(pending).tolist()
    for offset, value in enumerate(values):
        if not math.isfinite(value):
            bad = step - len(values) + offset + 1
            kept = ("no checkpoint is written without out_dir" if out_dir is None else
                    f"the last good checkpoint {Path(out_dir) / 'checkpoint.pt'} (after epoch {epoch - 1}) is kept"
                    if epoch > 1 else "no checkpoint was written yet")
            raise NonFiniteLossError(f"loss is {value} at epoch {epoch}, step {bad}: training stopped; {kept}. "
                                     f"Lower the learning rate or clip gradients.")
    pending.clear()
    return values


def _train_step(run, x, y, meter) -> None:
    """Forward, loss check, backward, clip, optimizer step; adds to the epoch's `meter`."""
    model, optimizer, config, device = run["model"], run["optimizer"], run["config"], run["device"]
    for group in optimizer.param_groups:
        group["lr"] = config.lr * run["lr_factor"](run["step"])
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    with _autocast(device, config.amp):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
    meter["pending"].append(loss.detach())
    if len(meter["pending"]) == meter["sync_every"]:  # checked before the step: a bad loss never updates
        _flush(meter["pending"], meter["epoch"], meter["steps"] + 1, run["out_dir"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip is not None:
        nn.utils.clip_grad_norm_(run["params"], config.grad_clip)
    optimizer.step()
    run["step"] += 1
    meter["loss"] += loss.detach() * len(y)  # summed on the device: no sync per step on a GPU
    meter["correct"] += (logits.detach().argmax(-1) == y).sum()
    meter["seen"] += len(y)
    meter["steps"] += 1


def _train_epoch(run, epoch: int) -> dict:
    """One pass over the training loader; returns the epoch's training statistics."""
    device = run["device"]
    run["base_model"].train()
    if hasattr(run["train_loader"], "set_epoch"):
        run["train_loader"].set_epoch(epoch - 1)
    meter = {"loss": torch.zeros((), device=device), "correct": torch.zeros((), device=device, dtype=torch.int64),
             "seen": 0, "steps": 0, "epoch": epoch, "pending": [],
             "sync_every": 1 if device.type == "cpu" else 20}  # the CPU is synchronous: checking is free
    start = time.perf_counter()
    with tqdm(total=run["steps"], desc=f"epoch {epoch}/{run['config'].epochs}", leave=False,
              disable=not run["progress"]) as bar:
        for x, y in run["train_loader"]:
            _train_step(run, x, y, meter)
            bar.update()
            if meter["steps"] % 10 == 0:
                n = max(meter["seen"], 1)
                bar.set_postfix(loss=f"{meter['loss'].item() / n:.3f}", acc=f"{meter['correct'].item() / n:.3f}",
                                img_s=f"{n / (time.perf_counter() - start):.0f}", refresh=False)
            if meter["steps"] == run["steps"]:
                break
    if meter["pending"]:
        _flush(meter["pending"], epoch, meter["steps"], run["out_dir"])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds, n = time.perf_counter() - start, max(meter["seen"], 1)
    return {"train_loss": meter["loss"].item() / n, "train_acc": meter["correct"].item() / n,
            "lr": run["optimizer"].param_groups[0]["lr"], "img_per_s": meter["seen"] / seconds}


def fit(model: nn.Module, train_loader, test_loader, config: TrainConfig, out_dir=None, resume: bool = False,
        device=None, progress: bool = True, verbose: bool = True) -> list[dict]:
    """Train `model` in place; returns one dict per epoch: epoch, train_loss, train_acc,
    test_loss, test_acc (None without a test loader), lr (at the epoch's last step),
    seconds (whole epoch, evaluation included), img_per_s (training only). Accuracies are
    fractions in [0, 1]. With `out_dir`, checkpoint.pt and history.json are written after
    every epoch; `resume=True` continues the same run from them (same config, data size and
    model; otherwise it warns and starts afresh)."""
    device = torch.device(device) if device is not None else env.get_device()
    model.to(device)
    out_dir = Path(out_dir) if out_dir is not None else None
    steps = len(train_loader) if config.max_steps_per_epoch is None else min(len(train_loader), config.max_steps_per_epoch)
    total, warmup = config.epochs * steps, round(config.warmup_epochs * steps)
    optimizer = make_optimizer(model, config, device)
    torch.manual_seed(config.seed)
    history = []
    if resume and out_dir is not None and (out_dir / "checkpoint.pt").is_file():
        history = _restore(out_dir / "checkpoint.pt", model, optimizer, config, steps, train_loader)
    run = {"model": torch.compile(model) if config.compile else model, "base_model": model, "device": device,
           "optimizer": optimizer, "config": config, "train_loader": train_loader, "steps": steps,
           "step": len(history) * steps, "out_dir": out_dir, "progress": progress,
           "params": [p for p in model.parameters() if p.requires_grad],
           "lr_factor": lambda s: lr_factor(s, total, warmup, config.schedule)}
    for epoch in range(len(history) + 1, config.epochs + 1):
        start = time.perf_counter()
        stats = _train_epoch(run, epoch)
        test = evaluate(model, test_loader, device, config.amp) if test_loader is not None else {}
        history.append({"epoch": epoch, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
                        "test_loss": test.get("loss"), "test_acc": test.get("acc"), "lr": stats["lr"],
                        "seconds": time.perf_counter() - start, "img_per_s": stats["img_per_s"]})
        if out_dir is not None:
            save_checkpoint(out_dir, model, optimizer, history, config, run["step"], steps, train_loader)
        if verbose:
            _print_epoch(history[-1], config.epochs)
    return history


def _print_epoch(h: dict, epochs: int) -> None:
    test = (f" | test loss {h['test_loss']:.3f} acc {h['test_acc']:.1%}" if h["test_acc"] is not None else "")
    tqdm.write(f"epoch {h['epoch']:>3}/{epochs} | train loss {h['train_loss']:.3f} acc {h['train_acc']:.1%}"
               f"{test} | lr {h['lr']:.2e} | {h['seconds']:.1f} s, {h['img_per_s']:,.0f} img/s")
