"""Where a notebook runs: the VIT_PROFILE switch, the device banner, and the course's folders.

`VIT_PROFILE=smoke` (what `pytest` sets: pyproject.toml) shrinks every notebook to a few CPU
minutes and never downloads; `full` (the default, Jupyter's) is what a reader runs: real
budgets, downloads allowed. `VIT_FAST_DEV_RUN=1` keeps a profile's code, models, image sizes
and data paths but caps every training run to 2 steps of one epoch, every evaluation inside it
to 2 batches, and the batches of large models to 4 images (PyTorch Lightning's `fast_dev_run`):
a rehearsal of the code path, not a result (tools/rehearsal.py runs the full profile that way).
`VIT_DATA` moves the data folder (datasets, caches, runs) anywhere, e.g. a Google Drive
folder on Colab; by default it is data/ in this repository, and the CIFAR-10 copy shipped in
data/cifar10-jpeg.tar.xz is unpacked into it on first use. Figures go to figures/ in the full
profile only; smoke and fast dev runs write theirs into the data folder, and `VIT_FIGURES` moves
them anywhere. Only this module reads the environment; vit_core takes every path and switch as
an argument.

    from course import setup
    here = setup()   # prints one line; here.device, here.data, here.figures, here.profile, here.downloads
"""
from __future__ import annotations

import os
import platform
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch

PROFILES = ("full", "smoke")
ROOT = Path(__file__).resolve().parents[2]  # the repository: notebooks/course/env.py -> ../..
# The JPEG quality-75 copy of CIFAR-10 shipped in the repository (18.6 MB); data_dir() unpacks
# it into the data folder on first use, so a fresh clone needs no download.
OFFLINE_CIFAR10 = ROOT / "data" / "cifar10-jpeg.tar.xz"
FAST_DEV_STEPS, FAST_DEV_EVAL_BATCHES, FAST_DEV_BATCH = 2, 2, 4  # what a fast dev run keeps of each run


def get_profile() -> str:
    profile = os.environ.get("VIT_PROFILE", "full").strip().lower() or "full"
    if profile not in PROFILES:
        raise ValueError(f"VIT_PROFILE must be one of {PROFILES}, got {profile!r}")
    return profile


def is_smoke() -> bool:
    return get_profile() == "smoke"


def pick(full, smoke):
    """The value for the current profile: `pick(full=100, smoke=2)` epochs."""
    return smoke if is_smoke() else full


def is_fast_dev_run() -> bool:
    """VIT_FAST_DEV_RUN=1 (or true/yes/on): every training run capped to a couple of steps."""
    return os.environ.get("VIT_FAST_DEV_RUN", "").strip().lower() in ("1", "true", "yes", "on")


def dev_run(config):
    """A TrainConfig as the profile has it, or in a fast dev run: one epoch of at most
    FAST_DEV_STEPS steps and FAST_DEV_EVAL_BATCHES evaluation batches."""
    if not is_fast_dev_run():
        return config
    steps = min(config.max_steps_per_epoch or FAST_DEV_STEPS, FAST_DEV_STEPS)
    return replace(config, epochs=1, max_steps_per_epoch=steps, max_eval_batches=FAST_DEV_EVAL_BATCHES)


def dev_cap(n: int, cap: int = FAST_DEV_BATCH) -> int:
    """`n` (a batch size, a number of images), or at most `cap` in a fast dev run."""
    return min(n, cap) if is_fast_dev_run() else n


def expect(ok: bool, claim: str) -> None:
    """Assert a claim about a trained result. A fast dev run trains 2 steps (often on fake
    data), so there the claim is printed as unchecked instead."""
    if is_fast_dev_run():
        print(f"fast dev run: not checked: {claim}")
    elif not ok:
        raise AssertionError(claim)


def downloads_allowed() -> bool:
    """Whether notebooks may download data or weights: in the full profile only."""
    return not is_smoke()


def get_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def hardware(device: torch.device | str | None = None, history=()) -> str:
    """The one name of the machine a run or a timing used: the GPU's name on CUDA, else
    'CPU <model> (<n> cores), <threads>'. `history` (fit's per-epoch entries) names the torch
    CPU threads of each stretch of epochs (a run resumed with another --threads used both);
    without it, the threads now."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() is often empty
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {model} ({os.cpu_count()} cores), {_threads(history)}"


def _threads(history=()) -> str:
    """'2 torch thread(s)', or 'torch thread(s): 1 (epochs 1-15), then 2 (epochs 16-100)'."""
    counts = [h.get("threads") or torch.get_num_threads() for h in history] or [torch.get_num_threads()]
    stretches = []  # [threads, first epoch, last epoch]
    for epoch, n in enumerate(counts, start=1):
        if stretches and stretches[-1][0] == n:
            stretches[-1][2] = epoch
        else:
            stretches.append([n, epoch, epoch])
    if len(stretches) == 1:
        return f"{counts[0]} torch thread(s)"
    return "torch thread(s): " + ", then ".join(f"{n} (epochs {a}-{b})" for n, a, b in stretches)


# The markers tools/fakes.py writes beside every fake of a rehearsal (tools/rehearsal.py): read
# here, so that every output of a run on fakes says so.
FAKE_DATA_MARKER = "FAKE_DATA.txt"        # in the data folder: which datasets there are fakes
FAKE_WEIGHTS_MARKER = "FAKE_WEIGHTS.txt"  # in <torch hub>/checkpoints: which weight files are random


def fakes_described(folder) -> list[str]:
    """The lines of the fake markers in `folder` (empty if nothing there is fake)."""
    markers = [Path(folder) / FAKE_DATA_MARKER, Path(folder) / FAKE_WEIGHTS_MARKER]
    return [line for m in markers if m.is_file() for line in m.read_text().splitlines() if line.strip()]


def fakes_in_use() -> list[str]:
    """What in the data folder and torch's hub cache is fake (a rehearsal's markers)."""
    return fakes_described(data_dir()) + fakes_described(Path(torch.hub.get_dir()) / "checkpoints")


def describe(device: torch.device | None = None) -> str:
    """The one line every notebook prints first: profile, device, data folder and versions; then,
    when they apply, the fast dev run and the FAKE DATA / RANDOM WEIGHTS a rehearsal runs on."""
    import torchvision

    device = device or get_device()
    where = f"cpu ({torch.get_num_threads()} threads)" if device.type == "cpu" else f"{device.type} ({hardware(device)})"
    data = data_dir()
    shown = f"{data.relative_to(ROOT)}/" if data.is_relative_to(ROOT) else data  # data/ in a checkout
    parts = [f"profile {get_profile()}", f"device {where}", f"data {shown}",
             f"torch {torch.__version__}, torchvision {torchvision.__version__}"]
    if is_fast_dev_run():
        parts.append(f"FAST DEV RUN: every training run capped to {FAST_DEV_STEPS} steps of 1 epoch, "
                     f"evaluations to {FAST_DEV_EVAL_BATCHES} batches: no number below is a result")
    fake = fakes_in_use()
    if fake:
        parts.append("FAKE DATA / RANDOM WEIGHTS (a rehearsal): " + "; ".join(fake))
    line = " · ".join(parts)
    print(line)
    return line


class Setup(NamedTuple):
    """What `setup()` chose for a notebook."""
    profile: str         # 'full' | 'smoke' (VIT_PROFILE)
    device: torch.device  # cuda if present, else cpu
    data: Path           # datasets, decode caches and runs: $VIT_DATA, else data/
    figures: Path        # where figures are saved (figures/ in the full profile only)
    downloads: bool      # whether torchvision and torch.hub may download (full profile only)


def setup() -> Setup:
    """A notebook's first call: picks the profile, the device and the folders, prints them in one
    line (describe) and returns them."""
    device = get_device()
    chosen = Setup(get_profile(), device, data_dir(), figures_dir(), downloads_allowed())
    describe(device)
    return chosen


def data_dir() -> Path:
    """Where datasets, decode caches and runs land: $VIT_DATA, else data/ in the repository.
    The shipped CIFAR-10 copy is unpacked into it on first use (cifar10_ready)."""
    path = Path(os.environ.get("VIT_DATA") or ROOT / "data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    cifar10_ready(path)
    return path


def cifar10_ready(root) -> Path | None:
    """<root>/cifar10/{train,test}: there already, or unpacked from OFFLINE_CIFAR10 (about 5 s,
    236 MB; atomically, so an interrupted unpack is never used); None without the archive
    (vit_core then reads torchvision's CIFAR-10, downloading it where allowed)."""
    folder = Path(root) / "cifar10"
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return folder
    if not OFFLINE_CIFAR10.is_file():
        return None
    print(f"unpacking {OFFLINE_CIFAR10.name} (CIFAR-10, JPEG q75 copy) into {root} ...", flush=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".cifar10-unpacking-") as scratch:
        with tarfile.open(OFFLINE_CIFAR10) as archive:
            archive.extractall(scratch, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        try:
            os.replace(Path(scratch) / "cifar10", folder)
        except OSError:  # another process unpacked it first
            if not (folder / "train").is_dir():
                raise
    return folder


def figures_dir() -> Path:
    """Where notebooks save their figures: $VIT_FIGURES if set; else figures/ in the repository
    (the README's figures, made by full-profile runs) in the full profile, and a folder in the
    data folder for test runs (smoke profile: figures-smoke/; fast dev run: figures-fast-dev-run/),
    so that `pytest` and rehearsals never overwrite the committed figures."""
    if os.environ.get("VIT_FIGURES"):
        path = Path(os.environ["VIT_FIGURES"]).expanduser()
    elif is_fast_dev_run():
        path = data_dir() / "figures-fast-dev-run"
    elif is_smoke():
        path = data_dir() / "figures-smoke"
    else:
        path = ROOT / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
