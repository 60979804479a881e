"""The training loop every notebook uses, and the fine-tuning helpers.

`fit` trains in place: AdamW/Adam/SGD, linear warmup then cosine decay per step, label
smoothing, gradient clipping, mixed precision on CUDA (bfloat16 on GPUs with native bfloat16,
compute capability >= 8.0; float16 with a gradient scaler on older ones such as the T4; the
CPU runs float32 unless `TrainConfig.amp_dtype` forces a dtype), optional torch.compile. Its
random draws (dropout, drop-path, augmentations) come from a private copy of torch's
generator seeded with `TrainConfig.seed`: the caller's global RNG is left as it was. With
`out_dir` it writes checkpoint.pt and history.json after every epoch, atomically, and
`resume=True` continues an interrupted run to the same weights and history as an
uninterrupted one (bit for bit on the CPU).
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm


@dataclass
class TrainConfig:
    epochs: int = 10                   # passes over the training loader
    lr: float = 1e-3                   # peak learning rate, reached at the end of warmup
    weight_decay: float = 0.05         # decoupled for AdamW; plain L2 for Adam and SGD
    decay_all: bool = False            # also decay biases, LayerNorms, CLS and positions (tintn's code does)
    optimizer: str = "adamw"           # 'adamw' | 'adam' | 'sgd'
    momentum: float = 0.9              # SGD only
    warmup_epochs: float = 1.0         # linear warmup length, in epochs (fractions allowed)
    schedule: str = "cosine"           # after warmup: 'cosine' decay to 0 | 'constant'
    label_smoothing: float = 0.0       # probability mass spread over all classes in the loss
    grad_clip: float | None = 1.0      # max global gradient L2 norm; None = no clipping
    amp: bool = True                   # mixed precision; the dtype follows amp_dtype() below
    amp_dtype: str | None = None       # None: per device (see amp_dtype()); 'bfloat16' | 'float16' forces one, CPU too
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


@dataclass
class RunState:
    """What a run carries across epochs, and what its checkpoint holds."""
    step: int = 0                                      # optimizer steps taken so far
    history: list[dict] = field(default_factory=list)  # one dict per finished epoch


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


# ---------------------------------------------------------------- fine-tuning helpers

def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameter elements."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def freeze_all_but_last(model: nn.Module, k: int, train_norm: bool = True) -> None:
    """Train only the last `k` encoder blocks and the head (and the final LayerNorm unless
    train_norm=False, as seed 001 kept it frozen)."""
    if not 0 <= k <= len(model.blocks):
        raise ValueError(f"k must lie in [0, {len(model.blocks)}], got {k}")
    model.requires_grad_(False)
    for module in [*model.blocks[len(model.blocks) - k:], model.head] + ([model.norm] if train_norm else []):
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

def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Weight decay only on matrices unless config.decay_all: decaying biases, LayerNorm
    gains and the position and CLS embeddings toward zero only hurts (the convention of ViT
    and BERT training)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            skip = not config.decay_all and (p.ndim <= 1 or name in ("pos_embed", "cls_token"))
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


# ---------------------------------------------------------------- precision and evaluation

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def amp_dtype(device, override: str | None = None) -> torch.dtype | None:
    """The autocast dtype on `device`: `override` ('bfloat16' | 'float16') on any device if
    given; else bfloat16 on GPUs with native bfloat16 tensor cores (compute capability >= 8.0:
    A100, L4, H100, ...), float16 on older GPUs (T4, V100: the GPUs Colab hands out most; fit
    adds a gradient scaler), and None (float32) on the CPU."""
    if override is not None:
        if override not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be None or one of {tuple(AMP_DTYPES)}, got {override!r}")
        return AMP_DTYPES[override]
    device = torch.device(device)
    if device.type != "cuda":
        return None
    native_bf16 = torch.cuda.get_device_capability(device)[0] >= 8 and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native_bf16 else torch.float16


def _autocast(device: torch.device, amp: bool, override: str | None = None):
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
            with _autocast(device, amp, dtype):
                logits = model(x).float()
                if flip:
                    logits = (logits + model(x.flip(-1)).float()) / 2
            yield logits, y
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, loader, device=None, amp: bool = True, max_batches: int | None = None,
             amp_dtype: str | None = None, flip: bool = False) -> dict:
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


def save_checkpoint(out_dir: Path, model, optimizer, scaler, state: RunState, config: TrainConfig,
                    steps_per_epoch: int, train_loader) -> None:
    """checkpoint.pt (weights, optimizer, RNG: all a resume needs) and history.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if hasattr(train_loader, "state_dict"):
        rng["loader"] = train_loader.state_dict()
    blob = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "step": state.step, "history": state.history, "steps_per_epoch": steps_per_epoch,
            "config": asdict(config), "rng": rng}
    _save_atomic(lambda p: torch.save(blob, p), out_dir / "checkpoint.pt")
    _save_atomic(lambda p: p.write_text(json.dumps(state.history, indent=1)), out_dir / "history.json")


def _mismatch(blob: dict, model, config: TrainConfig, steps_per_epoch: int) -> str | None:
    """Why a checkpoint cannot continue this run (None if it can)."""
    now = asdict(config)
    changed = {k: (v, now.get(k)) for k, v in blob["config"].items() if now.get(k) != v}
    if changed:
        return f"its TrainConfig differs (saved, now): {changed}"
    if blob["steps_per_epoch"] != steps_per_epoch:
        return f"it ran {blob['steps_per_epoch']} steps per epoch, this loader gives {steps_per_epoch}"
    if {k: v.shape for k, v in model.state_dict().items()} != {k: v.shape for k, v in blob["model"].items()}:
        return "its weights do not fit this model"
    return None


def _restore(path: Path, model, optimizer, scaler, config, steps_per_epoch, train_loader) -> RunState:
    """Load a checkpoint written by fit() into model, optimizer, scaler and RNG. If it belongs
    to another run (config, data size or model changed), warn and start afresh: continuing
    it would silently mix two different runs."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    problem = _mismatch(blob, model, config, steps_per_epoch)
    if problem:
        warnings.warn(f"not resuming from {path}: {problem}; training from scratch and overwriting it")
        return RunState()
    model.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    scaler.load_state_dict(blob["scaler"])
    torch.set_rng_state(blob["rng"]["torch"])
    if "cuda" in blob["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])
    if "loader" in blob["rng"] and hasattr(train_loader, "load_state_dict"):
        train_loader.load_state_dict(blob["rng"]["loader"])
    return RunState(step=blob["step"], history=blob["history"])


# ---------------------------------------------------------------- the loop

def _check_finite(loss: torch.Tensor, epoch: int, step: int, out_dir) -> None:
    if math.isfinite(loss.item()):
        return
    kept = ("no checkpoint is written without out_dir" if out_dir is None else
            f"the last good checkpoint {Path(out_dir) / 'checkpoint.pt'} (after epoch {epoch - 1}) is kept"
            if epoch > 1 else "no checkpoint was written yet")
    raise NonFiniteLossError(f"loss is {loss.item()} at epoch {epoch}, step {step}: training stopped; {kept}. "
                             f"Lower the learning rate or clip gradients.")


def train_one_epoch(model, loader, optimizer, scaler, config: TrainConfig, lr_at, state: RunState,
                    epoch: int, steps: int, out_dir=None, bar=None) -> EpochSums:
    """One pass over `loader` (at most `steps` batches); the whole training step is here."""
    device = next(model.parameters()).device
    sums = EpochSums(torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.int64))
    params = [p for p in model.parameters() if p.requires_grad]
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)  # y: labels, or (B, classes) soft targets
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_at(state.step)                        # 1. this step's learning rate
        with _autocast(device, config.amp, config.amp_dtype):
            logits = model(x)                                                  # 2. forward (mixed precision on CUDA)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)  # 3. loss in float32
        if device.type == "cpu" or sums.steps % 20 == 0:  # a GPU check costs a sync: every 20th step
            _check_finite(loss, epoch, sums.steps + 1, out_dir)               # a bad loss never updates weights
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()                                          # 4. backward (scaled for float16)
        # float16 only: a scaled gradient that overflows makes scaler.step skip this update and
        # halve the scale. The loss itself stayed finite, so the NaN/inf stop above ignores it.
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, config.grad_clip)                 # 5. clip the global gradient norm
        scaler.step(optimizer)                                                 # 6. update the weights
        scaler.update()
        state.step += 1
        sums.loss += loss.detach() * len(y)
        sums.correct += (logits.detach().argmax(-1) == (y.argmax(-1) if y.ndim == 2 else y)).sum()
        sums.seen, sums.steps = sums.seen + len(y), sums.steps + 1
        if bar is not None:
            bar.update()
        if sums.steps == steps:
            break
    _check_finite(sums.loss / max(sums.seen, 1), epoch, sums.steps, out_dir)  # catches what the GPU skipped
    return sums


def fit(model: nn.Module, train_loader, test_loader, config: TrainConfig, out_dir=None, resume: bool = False,
        device=None, progress: bool = True, verbose: bool = True, on_epoch_end=None) -> list[dict]:
    """Train `model` in place; returns one dict per epoch: epoch, train_loss, train_acc,
    test_loss, test_acc (None without a test loader), lr (at the epoch's last step),
    seconds (whole epoch, evaluation included), img_per_s (training only), threads (torch CPU
    threads; None on a GPU: a resumed run may use another count). Accuracies are
    fractions in [0, 1]. With `out_dir`, checkpoint.pt and history.json are written after
    every epoch; `resume=True` continues the same run from them (same config, data size and
    model; otherwise it warns and starts afresh). `on_epoch_end(model, entry)`, if given, is
    called after each epoch's evaluation (e.g. to keep the weights of the best validation epoch)."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    out_dir = Path(out_dir) if out_dir is not None else None
    steps = len(train_loader) if config.max_steps_per_epoch is None else min(len(train_loader), config.max_steps_per_epoch)
    total, warmup = config.epochs * steps, round(config.warmup_epochs * steps)
    optimizer = make_optimizer(model, config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and amp_dtype(device, config.amp_dtype) == torch.float16)
    forward = torch.compile(model) if config.compile else model
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the caller's RNG is left alone
        torch.manual_seed(config.seed)
        state = RunState()
        if resume and out_dir is not None and (out_dir / "checkpoint.pt").is_file():
            state = _restore(out_dir / "checkpoint.pt", model, optimizer, scaler, config, steps, train_loader)
        for epoch in range(len(state.history) + 1, config.epochs + 1):
            start = time.perf_counter()
            model.train()
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch - 1)
            with tqdm(total=steps, desc=f"epoch {epoch}/{config.epochs}", leave=False, disable=not progress) as bar:
                sums = train_one_epoch(forward, train_loader, optimizer, scaler, config,
                                       lambda s: lr_factor(s, total, warmup, config.schedule),
                                       state, epoch, steps, out_dir, bar)
            train_seconds = time.perf_counter() - start
            test = (evaluate(model, test_loader, device, config.amp, config.max_eval_batches, config.amp_dtype)
                    if test_loader is not None else {})
            n = max(sums.seen, 1)
            state.history.append({"epoch": epoch, "train_loss": sums.loss.item() / n,
                                  "train_acc": sums.correct.item() / n, "test_loss": test.get("loss"),
                                  "test_acc": test.get("acc"), "lr": optimizer.param_groups[0]["lr"],
                                  "seconds": time.perf_counter() - start, "img_per_s": sums.seen / train_seconds,
                                  "threads": torch.get_num_threads() if device.type == "cpu" else None})
            if out_dir is not None:
                save_checkpoint(out_dir, model, optimizer, scaler, state, config, steps, train_loader)
            if on_epoch_end is not None:
                on_epoch_end(model, state.history[-1])
            if verbose:
                _print_epoch(state.history[-1], config.epochs)
    return state.history


def _print_epoch(h: dict, epochs: int) -> None:
    test = (f" | test loss {h['test_loss']:.3f} acc {h['test_acc']:.1%}" if h["test_acc"] is not None else "")
    tqdm.write(f"epoch {h['epoch']:>3}/{epochs} | train loss {h['train_loss']:.3f} acc {h['train_acc']:.1%}"
               f"{test} | lr {h['lr']:.2e} | {h['seconds']:.1f} s, {h['img_per_s']:,.0f} img/s")
