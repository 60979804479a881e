"""A reader's full-profile run, rehearsed offline: the notebooks' full-profile code on fakes.

    python -m tools.rehearsal                    # every notebook with a full-profile branch
    python -m tools.rehearsal 08 09 --keep /tmp/rehearsal

It writes format-true fakes (tools.fakes: CIFAR-100, Oxford-IIIT Pet, ViT-B/16 weights for
torch.hub, Google's npz and the HuggingFace Hub) into a temporary folder, links the CIFAR-10
copy of the data folder in, converts each notebook's .py source into a fresh .ipynb and runs
it through nbval (cells must run, outputs are not compared) with

    VIT_PROFILE=full VIT_FAST_DEV_RUN=1   the full profile's code, models, image sizes and data
                                          paths; every run capped to a couple of steps (course.env)
    VIT_DATA, TORCH_HOME, HF_HOME         the temporary folders holding the fakes
    VIT_FIGURES                           figures land there, never in figures/
    IPYTHONDIR                            a startup file, run in every rehearsal kernel only, that
                                          makes the network unreachable and lets torchvision read
                                          the fake CIFAR-100 (its md5 check cannot pass on fake
                                          bytes; skipped only for files under the fake folder)

Every output of such a run says FAKE DATA / RANDOM WEIGHTS in its first line: its numbers
mean nothing; what it proves is that the reader's code path runs. Exit code: pytest's.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course import env

from tools import fakes

NOTEBOOKS = env.ROOT / "notebooks"
# Notebooks whose full profile takes a branch the smoke profile never runs (downloads,
# pretrained weights, 224 px ViT-B/16 training): CI rehearses these.
FULL_BRANCH = ("05", "07", "08", "09", "10", "11")
# A cell of a fast dev run that takes longer than this trains or evaluates something uncapped
# (a run that is not wrapped in env.dev_run, a loader not capped by env.dev_cap): it fails.
CELL_TIMEOUT_S = 600

STARTUP = '''\
# Written by tools/rehearsal.py into a temporary IPYTHONDIR: it runs in rehearsal kernels only.
import os as _os
import socket as _socket

_FAKE_ROOT = {fake_root!r}


def _refuse(*args, **kwargs):
    raise OSError("network unreachable: this is an offline rehearsal on fakes")


def _connect(self, address, _real=_socket.socket.connect):
    if self.family in (_socket.AF_INET, _socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        _refuse()
    return _real(self, address)


_socket.create_connection = _refuse
_socket.socket.connect = _connect

import torchvision.datasets.cifar as _cifar  # noqa: E402

def _check_integrity(fpath, md5=None, _real=_cifar.check_integrity):
    """torchvision's md5 check, skipped for the fakes (random bytes cannot match it)."""
    if _os.path.realpath(fpath).startswith(_FAKE_ROOT + _os.sep):
        return _os.path.isfile(fpath)
    return _real(fpath, md5)


_cifar.check_integrity = _check_integrity
'''


def write_startup(ipython_dir: Path, fake_root: Path) -> Path:
    """The IPython startup file above, in <ipython_dir>/profile_default/startup/."""
    folder = ipython_dir / "profile_default" / "startup"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "00-rehearsal.py"
    path.write_text(STARTUP.format(fake_root=str(Path(fake_root).resolve())))
    return path


def link_cifar10(data_root: Path) -> None:
    """The CIFAR-10 copy of the reader's data folder (unpacked there on first use), linked in
    with its decode caches so that no notebook decodes it again."""
    source = env.data_dir()
    env.cifar10_ready(source)
    (data_root / "cache").mkdir(parents=True, exist_ok=True)
    links = [(data_root / "cifar10", source / "cifar10")]
    links += [(data_root / "cache" / cache.name, cache) for cache in (source / "cache").glob("cifar10-jpeg-*.pt")]
    for link, target in links:
        if not link.is_symlink() and not link.exists():  # a kept workdir (--keep) may have them already
            link.symlink_to(target, target_is_directory=target.is_dir())


def prepare(workdir, huggingface: bool = True) -> dict[str, str]:
    """Fakes, CIFAR-10, the startup file and folders under `workdir`; returns the environment
    the rehearsal kernels run with."""
    workdir = Path(workdir).resolve()
    roots = {name: workdir / name for name in ("data", "torch", "hf", "ipython", "figures", "notebooks")}
    for path in roots.values():
        path.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    fakes.write_all(roots["data"], roots["torch"], roots["hf"] if huggingface else None)
    link_cifar10(roots["data"])
    write_startup(roots["ipython"], roots["data"])
    print(f"rehearsal: fakes written under {workdir} in {time.perf_counter() - start:.0f} s")
    environ = {k: v for k, v in os.environ.items() if k not in ("CATS_DOGS_DIR", "VIT_SITE_DIR")}
    environ.update(VIT_PROFILE="full", VIT_FAST_DEV_RUN="1", VIT_DATA=str(roots["data"]),
                   VIT_FIGURES=str(roots["figures"]), TORCH_HOME=str(roots["torch"]), HF_HOME=str(roots["hf"]),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", IPYTHONDIR=str(roots["ipython"]),
                   MPLBACKEND="Agg")
    return environ


def sources(prefixes) -> list[Path]:
    """notebooks/NN_*.py for each prefix ('08' or '08_finetune_cifar100'); all of them for ('all',)."""
    every = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if tuple(prefixes) == ("all",):
        return every
    chosen = [p for p in every if p.stem.startswith(tuple(prefixes))]
    missing = [x for x in prefixes if not any(p.stem.startswith(x) for p in every)]
    if missing:
        raise ValueError(f"no notebook starts with {missing}; there are {[p.stem for p in every]}")
    return chosen


def convert(paths, folder: Path) -> list[Path]:
    """Each py:percent source as a fresh, output-free .ipynb in `folder` (the source is what is
    rehearsed, whatever state the committed .ipynb is in)."""
    import jupytext

    out = []
    for path in paths:
        target = folder / path.with_suffix(".ipynb").name
        jupytext.write(jupytext.read(path), target)
        out.append(target)
    return out


def run(prefixes=FULL_BRANCH, workdir=None, junit: Path | None = None, pytest_args=(),
        environ: dict | None = None, extra_env: dict | None = None) -> int:
    """Rehearse the notebooks named by `prefixes` (see `sources`); pytest's exit code. `environ`
    is what `prepare(workdir)` returned, if it already ran there; `extra_env` is added to it
    (e.g. CUDA_VISIBLE_DEVICES='' to keep a GPU out of it)."""
    with tempfile.TemporaryDirectory(prefix="vit-rehearsal-") as scratch:
        workdir = Path(workdir or scratch)
        environ = {**(environ or prepare(workdir)), **(extra_env or {})}
        folder = workdir / "notebooks"
        folder.mkdir(parents=True, exist_ok=True)
        notebooks = convert(sources(prefixes), folder)
        (workdir / "pytest.ini").write_text("[pytest]\n")  # nothing from the repository's config
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
                   f"--nbval-cell-timeout={CELL_TIMEOUT_S}", "--rootdir", str(workdir), "-c", str(workdir / "pytest.ini"),
                   *(["--junitxml", str(junit)] if junit else []), *pytest_args, *map(str, notebooks)]
        print("rehearsal:", " ".join(p.name for p in notebooks), flush=True)
        return subprocess.call(command, env=environ, cwd=workdir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", default=list(FULL_BRANCH),
                        help=f"prefixes such as 08, or 'all' (default: {' '.join(FULL_BRANCH)})")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--junit", type=Path, help="write pytest's JUnit XML report here (per-cell times)")
    args = parser.parse_args(argv)
    return run(args.notebooks, args.keep, args.junit)


if __name__ == "__main__":
    sys.exit(main())
