"""The lessons' helper: only what a notebook imports. Maintainers' tools live in tools/.

    course.setup()     a notebook's first call: profile, device and folders, printed in one line
    course.env         the VIT_PROFILE switch (full | smoke), `pick`, the fast dev run, the folders,
                       the machine's name (`hardware`), the offline CIFAR-10 copy
    course.recipes     every named training recipe, defined once (the recipe book), and `run_name`
    course.runs        run, record and export recipes; a recipe's shipped model or one trained here:
                       `python -m course.recipes list | run NAME --out DIR | sweep | export`
    course.pretrained  pretrained weights, or None with the reason printed (smoke, offline)
    course.figures     figure saving, with text readable where the README shows it
    course.cnn, course.jpeg, course.memory   a ResNet baseline, JPEG settings, peak-memory estimates

It imports vit_core; vit_core never imports it. Copy vit_core/ alone into your own work.
"""
from .env import ROOT, Setup, setup  # noqa: F401


def max_diff(a, b) -> float:
    """Largest absolute element-wise difference: how the lessons show "the same numbers"."""
    return (a.detach().float() - b.detach().float()).abs().max().item()
