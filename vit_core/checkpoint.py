"""What `train.fit` writes after every epoch and reads back to resume: checkpoint.pt (weights,
optimizer, gradient scaler, RNG states, history) and history.json. Both are written
atomically, so an interrupted save leaves the previous files whole.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch


@dataclass
class RunState:
    """What a run carries across epochs, and what its checkpoint holds."""
    step: int = 0                                      # optimizer steps taken so far
    history: list[dict] = field(default_factory=list)  # one dict per finished epoch


def save_atomic(write, path: Path) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`: an
    interrupt (Ctrl-C, a killed kernel) leaves the previous file whole, never a truncated one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(out_dir: Path, model, optimizer, scaler, state: RunState, config,
                    steps_per_epoch: int, train_loader) -> None:
    """checkpoint.pt (weights, optimizer, RNG: all a resume needs) and history.json.
    `config` is the run's TrainConfig, stored to tell this run from another one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if hasattr(train_loader, "state_dict"):
        rng["loader"] = train_loader.state_dict()
    blob = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(), "step": state.step, "history": state.history,
            "steps_per_epoch": steps_per_epoch, "config": asdict(config), "rng": rng}
    save_atomic(lambda p: torch.save(blob, p), out_dir / "checkpoint.pt")
    history = json.dumps(state.history, indent=1)
    save_atomic(lambda p: p.write_text(history), out_dir / "history.json")


def _mismatch(blob: dict, model, config, steps_per_epoch: int) -> str | None:
    """Why a checkpoint cannot continue this run (None if it can)."""
    now = asdict(config)
    changed = {k: (v, now.get(k)) for k, v in blob["config"].items() if now.get(k) != v}
    if changed:
        return f"its TrainConfig differs (saved, now): {changed}"
    if blob["steps_per_epoch"] != steps_per_epoch:
        return (f"it ran {blob['steps_per_epoch']} steps per epoch, "
                f"this loader gives {steps_per_epoch}")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    if shapes != {k: v.shape for k, v in blob["model"].items()}:
        return "its weights do not fit this model"
    return None


def restore_checkpoint(path: Path, model, optimizer, scaler, config, steps_per_epoch: int,
                       train_loader) -> RunState:
    """Load a checkpoint written by save_checkpoint into model, optimizer, scaler and RNG. If
    it belongs to another run (config, data size or model changed), warn and start afresh:
    continuing it would silently mix two different runs."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    problem = _mismatch(blob, model, config, steps_per_epoch)
    if problem:
        warnings.warn(f"not resuming from {path}: {problem}; "
                      f"training from scratch and overwriting it")
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
