"""Numbers in the notebooks' prose come from their runs (issue 14): every measured-looking
number in a markdown cell (52.8%, 0.93, 1.27x, 1,200) is printed by an output of the same
notebook, or is a quoted fact listed here with its source. A number that is neither is prose
that can drift from the outputs when a profile, a model or a run changes."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+(?=\s?%))")

# Quoted, not measured: each with where it comes from.
QUOTED = {
    "08": {"50,000": "CIFAR-10/100 training set size (Krizhevsky, 2009)",
           "80.31": "mbastola's neural-nets-in-python log: CIFAR-100 test accuracy after epoch 5",
           "1.3": "ImageNet-1k: about 1.3 million training images (Russakovsky et al., 2015)",
           "87.13": "ViT paper (Dosovitskiy et al., 2021), appendix table 5: ViT-B/16, ImageNet-1k, CIFAR-100",
           "92.3": "jeonsworld/ViT-pytorch README: ViT-B/16, ImageNet-21k, CIFAR-100 at 224 px"},
    "09": {"3,680": "Oxford-IIIT Pet trainval split size (Parkhi et al., 2012; torchvision's OxfordIIITPet)",
           "3,669": "Oxford-IIIT Pet test split size (Parkhi et al., 2012; torchvision's OxfordIIITPet)",
           "5,000": "CIFAR-10 training images per class (Krizhevsky, 2009)"},
    "13": {"75.5": "tintn's vision-transformer-from-scratch README: test accuracy after 100 epochs",
           "0.02": "tintn's vit.py: initializer_range of its patch projection",
           "80.31": "mbastola's neural-nets-in-python log: CIFAR-100 test accuracy after epoch 5",
           "1.14": "256 / 224, torchvision's ViT_B_16_Weights transform (resize 256, crop 224)",
           "87.5": "224 / 256: the share of each side torchvision's ViT_B_16_Weights centre crop keeps"},
}


def texts(notebook: Path) -> tuple[list[str], str]:
    cells = json.loads(notebook.read_text())["cells"]
    prose = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    outputs = []
    for c in cells:
        for o in c.get("outputs", []):
            outputs.append("".join(o.get("text", "")))
            outputs += ["".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return prose, "\n".join(outputs)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_prose_numbers_are_printed_or_quoted(notebook):
    prose, outputs = texts(notebook)
    quoted = QUOTED.get(notebook.stem[:2], {})
    unprinted = sorted({n for md in prose for n in NUMBER.findall(md) if n not in outputs and n not in quoted})
    assert not unprinted, (f"{notebook.name}: numbers in prose that no output prints and that are not quoted "
                           f"facts in tests/test_prose_numbers.py: {unprinted}")


def test_quoted_numbers_are_still_in_their_notebooks():
    for prefix, numbers in QUOTED.items():
        notebook = next(p for p in NOTEBOOKS if p.stem.startswith(prefix))
        prose = " ".join(texts(notebook)[0])
        stale = [n for n in numbers if n not in prose]
        assert not stale, f"{notebook.name} no longer quotes {stale}: drop them from QUOTED"
