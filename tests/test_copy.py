"""A student copies vit_core/ alone into an empty folder and uses it: nothing else may be needed.

The coursework script runs in a fresh interpreter with no VIT_* variables, HOME and the
working directory inside the temporary folder: it builds the tiny ViT, trains it for two
steps with `fit`, saves and reloads it, and compares logits. The test then checks that the
copy (not this checkout) was imported, that nothing was written outside the output folder
the script named, and that importing the model pulled in no plotting, notebook or timm code.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

import vit_core

COURSEWORK = '''
import json, sys
from dataclasses import asdict
from pathlib import Path

import vit_core.model  # first: what does the model alone pull in?
import vit_core
HEAVY = ("matplotlib", "IPython", "ipykernel", "jupyter", "jupyter_client", "ipywidgets", "timm", "course")
heavy_after_import = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))

import torch
from vit_core import ViT, ViTConfig
from vit_core.data import TensorLoader
from vit_core.train import TrainConfig, fit

out = Path(sys.argv[1])
torch.manual_seed(0)
model = ViT(ViTConfig.cifar10_tiny())
images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)  # random "images" and labels
labels = torch.randint(0, 10, (32,))
loader = TensorLoader(images, labels, 8, train=True, device="cpu")
history = fit(model, loader, None, TrainConfig(epochs=1, max_steps_per_epoch=2), out_dir=out / "run",
              device="cpu", progress=False, verbose=False)

torch.save({"config": asdict(model.config), "model": model.state_dict()}, out / "tiny_vit.pt")
blob = torch.load(out / "tiny_vit.pt", weights_only=True)
reloaded = ViT(ViTConfig(**blob["config"]))
reloaded.load_state_dict(blob["model"])
x = torch.randn(4, 3, 32, 32)
same = torch.equal(model.eval()(x), reloaded.eval()(x))
print(json.dumps({"vit_core": vit_core.__file__, "heavy_after_import": heavy_after_import,
                  "heavy_at_end": sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY)),
                  "epochs": len(history), "same_logits": same}))
'''


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def test_vit_core_copied_alone_trains_saves_and_reloads(tmp_path):
    work, home, out = tmp_path / "coursework", tmp_path / "home", tmp_path / "coursework" / "out"
    shutil.copytree(Path(vit_core.__file__).parent, work / "vit_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (work / "train_tiny_vit.py").write_text(COURSEWORK)
    home.mkdir()
    out.mkdir()
    before = files_under(tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIT_") and k not in ("PYTHONPATH", "HOME")}
    result = subprocess.run(
        [sys.executable, "train_tiny_vit.py", str(out)], cwd=work, capture_output=True, text=True, timeout=300,
        env={**clean, "HOME": str(home), "TMPDIR": str(home), "PYTHONDONTWRITEBYTECODE": "1",
             "OMP_NUM_THREADS": "1", "MPLCONFIGDIR": str(home / "mpl")})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert Path(report["vit_core"]).parent == work / "vit_core"  # the copy, not this checkout
    assert report["same_logits"] and report["epochs"] == 1
    assert torch.load(out / "run" / "checkpoint.pt", weights_only=True)["step"] == 2  # two optimizer steps
    assert report["heavy_after_import"] == [], "importing vit_core.model pulled these in"
    assert report["heavy_at_end"] == [], "training with vit_core pulled these in"
    created = {p for p in files_under(tmp_path) - before if not (tmp_path / p).is_relative_to(out)}
    assert created == set(), f"written outside the output folder: {sorted(map(str, created))}"
    assert {"run/checkpoint.pt", "run/history.json", "tiny_vit.pt"} <= {str(p) for p in files_under(out)}
