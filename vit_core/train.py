"""The training loop (`fit`) and the fine-tuning helpers.

`fit` trains in place: AdamW/Adam/SGD, linear warmup then cosine decay per step, label
smoothing, gradient clipping, mixed precision on CUDA (bfloat16 on GPUs with native bfloat16,
compute capability >= 8.0; float16 with a gradient scaler on older ones such as the T4; the
CPU runs float32 unless `TrainConfig.amp_dtype` forces a dtype), optional torch.compile. Its
random draws (dropout, drop-path, augmentations) come from a private copy of torch's
generator seeded with `TrainConfig.seed`: the caller's global RNG is left as it was. With
`out_dir` it writes checkpoint.pt and history.json after every epoch, atomically (see
`checkpoint.py`), and `resume=True` continues an interrupted run to the same weights and
history as an uninterrupted one (bit for bit on the CPU). `evaluate`, `predict` and
`amp_dtype` live in `evaluation.py` and are importable from here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import RunState, restore_checkpoint, save_checkpoint
from .evaluation import AMP_DTYPES, amp_dtype, autocast, evaluate, predict  # noqa: F401

__all__ = ["TrainConfig", "RunState", "NonFiniteLossError", "count_parameters",
           "freeze_all_but_last", "replace_head", "make_optimizer", "lr_factor", "amp_dtype",
           "evaluate", "predict", "train_one_epoch", "fit"]


@dataclass
class TrainConfig:
    epochs: int = 10                   # passes over the training loader
    lr: float = 1e-3                   # peak learning rate, reached at the end of warmup
    weight_decay: float = 0.05         # decoupled for AdamW; plain L2 for Adam and SGD
    decay_all: bool = False            # also decay biases, LayerNorms, CLS and positions
    optimizer: str = "adamw"           # 'adamw' | 'adam' | 'sgd'
    momentum: float = 0.9              # SGD only
    warmup_epochs: float = 1.0         # linear warmup length, in epochs (fractions allowed)
    schedule: str = "cosine"           # after warmup: 'cosine' decay to 0 | 'constant'
    label_smoothing: float = 0.0       # probability mass spread over all classes in the loss
    grad_clip: float | None = 1.0      # max global gradient L2 norm; None = no clipping
    amp: bool = True                   # mixed precision; the dtype follows amp_dtype() below
    amp_dtype: str | None = None       # None: per device (see amp_dtype());
                                       # 'bfloat16' | 'float16' forces one, on the CPU too
    compile: bool = False              # torch.compile the model before training
    seed: int = 0                      # seeds fit's private RNG (dropout, drop-path, augmentations)
    max_steps_per_epoch: int | None = None  # cap on steps per epoch (smoke budgets, fast dev runs)
    max_eval_batches: int | None = None     # cap on evaluation batches per epoch (fast dev runs)


@dataclass
class EpochSums:
    """Running totals of one epoch, kept on the device (no GPU sync per step)."""
    loss: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    steps: int = 0


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


# ---------------------------------------------------------------- fine-tuning helpers

def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameter elements."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def freeze_all_but_last(model: nn.Module, k: int, train_norm: bool = True) -> None:
    """Train only the last `k` encoder blocks and the head, and the final LayerNorm unless
    train_norm=False."""
    if not 0 <= k <= len(model.blocks):
        raise ValueError(f"k must lie in [0, {len(model.blocks)}], got {k}")
    model.requires_grad_(False)
    trained = [*model.blocks[len(model.blocks) - k:], model.head]
    for module in trained + ([model.norm] if train_norm else []):
        module.requires_grad_(True)


def replace_head(model: nn.Module, num_classes: int, zero_init: bool = True) -> None:
    """A new head for `num_classes`. zero_init=True (the ViT paper's fine-tuning choice):
    every class starts at the same logit; False keeps nn.Linear's default random init."""
    old = model.head
    model.head = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
    if zero_init:
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)
    if hasattr(model, "config") and hasattr(model.config, "num_classes"):
        model.config = replace(model.config, num_classes=num_classes)


# ---------------------------------------------------------------- optimiser and schedule

def make_optimizer(model: nn.Module, config: TrainConfig,
                   device: torch.device) -> torch.optim.Optimizer:
    """Weight decay only on matrices unless config.decay_all: decaying biases, LayerNorm
    gains and the parameters the model names in `no_weight_decay()` (timm's convention;
    ViT's position and CLS embeddings) toward zero only hurts (the convention of ViT and
    BERT training)."""
    exempt = set(getattr(model, "no_weight_decay", set)())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            skip = not config.decay_all and (p.ndim <= 1 or name in exempt)
            (no_decay if skip else decay).append(p)
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


# ---------------------------------------------------------------- the loop

def _check_finite(loss: torch.Tensor, epoch: int, step: int, out_dir) -> None:
    if math.isfinite(loss.item()):
        return
    if out_dir is None:
        kept = "no checkpoint is written without out_dir"
    elif epoch > 1:
        kept = (f"the last good checkpoint {Path(out_dir) / 'checkpoint.pt'} "
                f"(after epoch {epoch - 1}) is kept")
    else:
        kept = "no checkpoint was written yet"
    raise NonFiniteLossError(f"loss is {loss.item()} at epoch {epoch}, step {step}: training "
                             f"stopped; {kept}. Lower the learning rate or clip gradients.")


def _update(loss: torch.Tensor, optimizer, scaler, config: TrainConfig, params) -> None:
    """Backward pass, optional clipping and one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()                              # backward (scaled for float16)
    # float16 only: a scaled gradient that overflows makes scaler.step skip this update and
    # halve the scale. The loss itself stayed finite, so the NaN/inf stop ignores it.
    if config.grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, config.grad_clip)     # clip the global gradient norm
    scaler.step(optimizer)                                     # update the weights
    scaler.update()


def train_one_epoch(model, loader, optimizer, scaler, config: TrainConfig, lr_at, state: RunState,
                    epoch: int, steps: int, out_dir=None, bar=None) -> EpochSums:
    """One pass over `loader` (at most `steps` batches); the whole training step is here."""
    device = next(model.parameters()).device
    sums = EpochSums(torch.zeros((), device=device),
                     torch.zeros((), device=device, dtype=torch.int64))
    params = [p for p in model.parameters() if p.requires_grad]
    for x, y in loader:
        # y: labels (B,), or soft targets (B, classes) from MixUp/CutMix
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_at(state.step)             # 1. this step's learning rate
        with autocast(device, config.amp, config.amp_dtype):
            logits = model(x)                                      # 2. forward (mixed precision)
        loss = F.cross_entropy(logits.float(), y,
                               label_smoothing=config.label_smoothing)  # 3. loss in float32
        if device.type == "cpu" or sums.steps % 20 == 0:  # a GPU check costs a sync: every 20th
            _check_finite(loss, epoch, sums.steps + 1, out_dir)     # before any update
        _update(loss, optimizer, scaler, config, params)            # 4.-6. backward, clip, step
        state.step += 1
        sums.loss += loss.detach() * len(y)
        hard = y.argmax(-1) if y.ndim == 2 else y  # (B,) class indices
        sums.correct += (logits.detach().argmax(-1) == hard).sum()
        sums.seen, sums.steps = sums.seen + len(y), sums.steps + 1
        if bar is not None:
            bar.update()
        if sums.steps == steps:
            break
    _check_finite(sums.loss / max(sums.seen, 1), epoch, sums.steps, out_dir)  # what GPUs skipped
    return sums


@dataclass
class _Run:
    """What every epoch of one `fit` call works with."""
    model: nn.Module
    forward: nn.Module  # the model, or its torch.compile'd wrapper
    train_loader: object
    test_loader: object
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    out_dir: Path | None
    steps: int  # optimizer steps per epoch
    total: int  # optimizer steps in the whole run
    warmup: int  # warmup steps
    state: RunState = field(default_factory=RunState)


def _history_entry(epoch: int, sums: EpochSums, test: dict, run: _Run, start: float,
                   train_seconds: float) -> dict:
    # under torchrun: totals over every process, so each logs the whole global batch's numbers
    seen = distributed.sum_over_processes(torch.tensor(sums.seen, device=sums.loss.device))
    loss, correct = (distributed.sum_over_processes(t) for t in (sums.loss, sums.correct))
    n = max(seen.item(), 1)
    return {"epoch": epoch, "train_loss": loss.item() / n,
            "train_acc": correct.item() / n, "test_loss": test.get("loss"),
            "test_acc": test.get("acc"), "lr": run.optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start, "img_per_s": n / train_seconds,
            "threads": torch.get_num_threads() if run.device.type == "cpu" else None}


def _run_epoch(run: _Run, epoch: int, config: TrainConfig, progress: bool) -> dict:
    """Train one epoch, evaluate, and return the epoch's history entry."""
    start = time.perf_counter()
    run.model.train()
    rank, world = distributed.rank_and_world()
    if world > 1:  # each process its own dropout and augmentation draws, replayable by epoch
        torch.manual_seed((config.seed * 1_000_003 + epoch) * 1_009 + rank)
    if hasattr(run.train_loader, "set_epoch"):
        run.train_loader.set_epoch(epoch - 1)
    lr_at = lambda s: lr_factor(s, run.total, run.warmup, config.schedule)  # noqa: E731
    with tqdm(total=run.steps, desc=f"epoch {epoch}/{config.epochs}", leave=False,
              disable=not progress) as bar:
        sums = train_one_epoch(run.forward, run.train_loader, run.optimizer, run.scaler, config,
                               lr_at, run.state, epoch, run.steps, run.out_dir, bar)
    train_seconds = time.perf_counter() - start
    test = {}
    if run.test_loader is not None:
        test = evaluate(run.model, run.test_loader, run.device, config.amp,
                        config.max_eval_batches, config.amp_dtype)
    return _history_entry(epoch, sums, test, run, start, train_seconds)


def fit(model: nn.Module, train_loader, test_loader, config: TrainConfig, out_dir=None,
        resume: bool = False, device=None, progress: bool = True, verbose: bool = True,
        on_epoch_end=None, eval_name: str = "test") -> list[dict]:
    """Train `model` in place; returns one dict per epoch: epoch, train_loss, train_acc,
    test_loss, test_acc (None without a test loader), lr (at the epoch's last step),
    seconds (whole epoch, evaluation included), img_per_s (training only), threads (torch CPU
    threads; None on a GPU: a resumed run may use another count). Accuracies are
    fractions in [0, 1]. With `out_dir`, checkpoint.pt and history.json are written after
    every epoch; `resume=True` continues the same run from them (same config, data size and
    model; otherwise it warns and starts afresh). `on_epoch_end(model, entry)`, if given, is
    called after each epoch's evaluation (e.g. to keep the weights of the best validation
    epoch). Under torchrun (see `vit_core.distributed`) the model trains in DDP, each process
    on its share of every global batch, and only process 0 writes, prints and calls
    `on_epoch_end`; every process evaluates the whole test loader. `eval_name` only labels the
    printed log (e.g. "val" when `test_loader` holds a validation split); the history keys
    stay test_loss/test_acc."""
    run = _prepare(model, train_loader, test_loader, config, out_dir, device)
    main = distributed.is_main()
    progress, verbose = progress and main, verbose and main
    # a private RNG: the caller's global generator is left alone
    with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        checkpoint = run.out_dir / "checkpoint.pt" if run.out_dir is not None else None
        if resume and checkpoint is not None and checkpoint.is_file():
            run.state = restore_checkpoint(checkpoint, model, run.optimizer, run.scaler, config,
                                           run.steps, train_loader)
        for epoch in range(len(run.state.history) + 1, config.epochs + 1):
            run.state.history.append(_run_epoch(run, epoch, config, progress))
            if run.out_dir is not None and main:
                save_checkpoint(run.out_dir, model, run.optimizer, run.scaler, run.state,
                                config, run.steps, train_loader)
            if on_epoch_end is not None and main:
                on_epoch_end(model, run.state.history[-1])
            distributed.wait_for_all()  # nobody reads a file process 0 is still writing
            if verbose:
                _print_epoch(run.state.history[-1], config.epochs, eval_name)
    return run.state.history


def _prepare(model, train_loader, test_loader, config: TrainConfig, out_dir, device) -> _Run:
    """Move the model, make the optimizer and gradient scaler, and count the steps."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    model.to(device)
    rank, world = distributed.rank_and_world()
    if world > 1:
        if not hasattr(train_loader, "shard"):
            raise ValueError("under torchrun fit needs a loader with shard(rank, world), such "
                             "as vit_core.data.TensorLoader")
        train_loader.shard(rank, world)
    steps = len(train_loader)
    if config.max_steps_per_epoch is not None:
        steps = min(steps, config.max_steps_per_epoch)
    float16 = config.amp and amp_dtype(device, config.amp_dtype) == torch.float16
    forward = distributed.wrap(model, device)  # DDP under torchrun, else the model itself
    return _Run(model=model, forward=torch.compile(forward) if config.compile else forward,
                train_loader=train_loader, test_loader=test_loader,
                optimizer=make_optimizer(model, config, device),
                scaler=torch.amp.GradScaler(device.type, enabled=float16),  # float16 only
                device=device, out_dir=Path(out_dir) if out_dir is not None else None,
                steps=steps, total=config.epochs * steps,
                warmup=round(config.warmup_epochs * steps))


def _print_epoch(h: dict, epochs: int, eval_name: str = "test") -> None:
    test = ""
    if h["test_acc"] is not None:
        test = f" | {eval_name} loss {h['test_loss']:.3f} acc {h['test_acc']:.1%}"
    tqdm.write(f"epoch {h['epoch']:>3}/{epochs} | train loss {h['train_loss']:.3f} "
               f"acc {h['train_acc']:.1%}{test} | lr {h['lr']:.2e} | {h['seconds']:.1f} s, "
               f"{h['img_per_s']:,.0f} img/s")
