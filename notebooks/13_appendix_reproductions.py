# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/13_appendix_reproductions.ipynb)
#
# # 13 · Appendix · Reproductions: the source projects' recipes rerun here
#
# **Optional reading.** The series started from four public projects: tintn's
# [vision-transformer-from-scratch](https://github.com/tintn/vision-transformer-from-scratch)
# (a small ViT trained on CIFAR-10), mbastola's
# [neural-nets-in-python](https://github.com/mbastola/neural-nets-in-python) (a pretrained ViT
# fine-tuned on CIFAR-100), the ViTCatsVDogs project (a ViT on cats vs dogs) and EVA6 Session 12
# (a spatial transformer on CIFAR-10). Each published a number. This appendix is for readers who
# want to know how the series' numbers compare with those: what each project's code really did,
# what the same recipe reaches when it is rerun here, and what cannot be made the same. Nothing
# in notebooks 01-12 depends on it.
#
# Notebook 12 compares its runs with EVA6 Session 12's log in place, because that comparison is
# its subject.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import setup
here = setup()  # prints one line: profile, device, data folder

# %%
import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from course import figures, jpeg, recipes
from course import runs as course_runs
from vit_core.data import load_tensors, source_name

DATA, FIGURES = here.data, here.figures
DATASET = source_name("cifar10", DATA)
TINTN = recipes.RECIPES["tintn"]  # notebook 06's plain recipe

# %% [markdown]
# ## tintn's recipe, as its source ran it
#
# Notebook 06 trains its tiny ViT with a plain recipe taken from tintn's
# vision-transformer-from-scratch, beside an improved one. The summary this series started from
# gives tintn's recipe as `optim.Adam(lr=1e-2, weight_decay=1e-2)`, batch 256, 100 epochs, and
# reports 75.5 % test accuracy. The repository itself builds
# `optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)` in `train.py`, with no
# learning-rate schedule, no gradient clipping, and weight decay on every tensor; its `data.py`
# trains on random horizontal flips and random resized crops (80–100 % of the area, aspect
# 3/4–4/3) of images normalised with mean = std = 0.5. The recipe `tintn` in `course.recipes`
# does that, and builds the model the way tintn's `vit.py` does, with three `ViTConfig` options:
# no LayerNorm before the head (`final_norm=False`), every projection drawn from
# $\mathcal N(0, 0.02^2)$, the patch projection included (`init="normal"`; `vit_core`'s default
# draws it LeCun-normal, several times larger), and the tanh approximation of GELU
# (`gelu="tanh"`). At a constant step size of $10^{-2}$ such details can change how fast a model
# learns, so the source's recipe runs on the source's model here.

# %%
print(f"{TINTN.name}: {TINTN.about}")
for name, series, source in recipes.differences(recipes.RECIPES["improved-cpu"], TINTN):
    if name.startswith("model."):  # the model details in which tintn's ViT differs from the series' default
        print(f"  {name:<17} series {str(series):<7} tintn {source}")

# %% [markdown]
# ## tintn's recipe against its source
#
# tintn's README reports 75.5 % test accuracy after 100 epochs: a single reported result, on
# torchvision's CIFAR-10. Two things cannot be made the same here: the random seed, and the copy
# of the data. The goal set for this recipe (README, "Results") was to come within 1.5 points of
# the source. Every shipped run of `tintn`, one per seed, against the cited numbers (the
# training loss is read off tintn's published plot, `assets/metrics.png`, so only roughly):

# %%
SOURCE_TEST_ACC = 0.755     # tintn's README: test accuracy after 100 epochs (cited, not measured here)
SOURCE_TRAIN_LOSS = 0.56    # tintn's assets/metrics.png: training loss at epoch 100, read off the plot (approximate)
GOAL = 0.015                # within 1.5 points of the source
tintn_runs = [r for r in (course_runs.record(recipes.run_name(TINTN.name, seed)) for seed in (0, 1, 2))
              if r is not None]
for r in tintn_runs:
    h = r["history"]
    last = [e["test_acc"] for e in h[-10:]]
    print(f"{TINTN.name} seed {r['seed']} ({r['data']}): test {r['test_acc']:.1%} after {len(h)} epochs "
          f"({100 * (r['test_acc'] - SOURCE_TEST_ACC):+.1f} points against {SOURCE_TEST_ACC:.1%}); "
          f"last {len(last)} epochs {min(last):.1%}-{max(last):.1%}; training loss {h[-1]['train_loss']:.2f} "
          f"({'above' if h[-1]['train_loss'] > SOURCE_TRAIN_LOSS else 'not above'} the source's ~{SOURCE_TRAIN_LOSS})")
if not tintn_runs:
    print(f"no shipped {TINTN.name} record in {course_runs.CHECKPOINTS}: nothing to compare")
elif len(tintn_runs) > 1:
    accs = torch.tensor([r["test_acc"] for r in tintn_runs])
    print(f"{len(tintn_runs)} seeds: mean {accs.mean():.1%}, spread {100 * (accs.max() - accs.min()):.1f} points; "
          f"{int((accs < SOURCE_TEST_ACC - GOAL).sum())} of {len(tintn_runs)} more than "
          f"{100 * GOAL:.1f} points below the source")

# %% [markdown]
# The same runs, epoch by epoch, with the source's number and the band of the goal around it:

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for r in tintn_runs:
    ax.plot([e["epoch"] for e in r["history"]], [100 * e["test_acc"] for e in r["history"]],
            lw=1, label=f"seed {r['seed']}")
ax.axhline(100 * SOURCE_TEST_ACC, color="k", lw=1, label="tintn's README")
ax.axhspan(100 * (SOURCE_TEST_ACC - GOAL), 100 * (SOURCE_TEST_ACC + GOAL), color="0.85", label="goal: within 1.5 points")
ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{TINTN.name}, {DATASET}")
ax.legend(fontsize=9, loc="lower right")
figures.save(fig, FIGURES / "13_tintn_seeds")
plt.show()

# %% [markdown]
# Which copy of the data those runs saw is in their records. The files of the copy in this data
# folder say what its compression kept (every 100th file of each split, read with Pillow by
# `course.jpeg`):

# %%
if DATASET.startswith("CIFAR-10 (JPEG"):
    surveys = {split: jpeg.survey(DATA / "cifar10" / split) for split in ("train", "test")}
    for split, found in surveys.items():
        for (quality, subsampling, size), count in found.most_common():
            colour_w, colour_h = jpeg.colour_resolution(size, subsampling) or ("?", "?")
            print(f"{split:<5} {count:>3} files: JPEG at IJG quality {quality or 'unknown (not IJG tables)'}, "
                  f"chroma {subsampling}: brightness stored at {size[0]}x{size[1]} px, colour at {colour_w}x{colour_h}")
    assert set(surveys["train"]) == set(surveys["test"]), "training and test files were compressed differently"
else:
    print(f"this data folder holds {DATASET}: CIFAR-10's own pixels, no JPEG loss")

# %% [markdown]
# **What this shows.** The rerun lands below tintn's published number, and its training loss
# ends above the source's: a run that fits its training images less well, which overfitting would
# not explain. At a constant step size of $10^{-2}$ a run ends wherever its last step leaves it:
# the range over the last epochs is the size of that luck, and the spread between seeds adds to
# it. The copy of the data is the difference no setting removes: JPEG quantises each 8 × 8
# block's frequency coefficients, the high frequencies most coarsely, and with 4:2:0 subsampling
# (where the survey prints it) stores colour at half the resolution each way.
#
# <details><summary>Caveats</summary>
#
# The source reports one run; how lucky that run was is unknown. The training and test files were
# compressed alike (the assert above checks it), so the two still match, but detail that
# CIFAR-10's own pixels hold is gone from both. How many points that costs is not measured here:
# it takes the same recipe, several seeds each, on CIFAR-10's own pixels and on the JPEG copy.
# The source's training loss is read off a plot, so only a clear gap means anything.
#
# </details>

# %% [markdown]
# ## Fine-tuning and cats vs dogs
#
# The comparisons with mbastola's neural-nets-in-python and the ViTCatsVDogs project are in
# notebooks 08 and 09's reproduction notes.

# %% [markdown]
# ## Exercises
#
# 1. **The luck of the last epoch.** For each shipped `tintn` run, in how many of its last 10
#    epochs was the test accuracy within the goal's band around tintn's published number? What
#    does that say about reporting the accuracy of the last epoch of a constant-step-size run?
# 2. **What quality 75 throws away.** Encode 100 CIFAR-10 test images with Pillow at JPEG
#    quality 75 and at quality 95 (chroma 4:2:0 both times), decode them, and measure the mean
#    absolute change per pixel value. Check with `course.jpeg.jpeg_settings` that the files say
#    which quality made them.
#
# Solutions follow; CI runs them and asserts what they claim.

# %% [markdown]
# ---
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: count the epochs among the last 10 that land inside the band.
for r in tintn_runs:
    last = torch.tensor([e["test_acc"] for e in r["history"][-10:]])
    inside = int(((last - SOURCE_TEST_ACC).abs() <= GOAL).sum())
    print(f"seed {r['seed']}: {inside} of {len(last)} last epochs within {100 * GOAL:.1f} points of the source")
    assert 0 <= inside <= len(last)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: re-encode test images at two qualities and compare the decoded pixels with the originals.
test_images, _ = load_tensors("cifar10", "test", DATA)
originals = test_images[:100]  # (100, 3, 32, 32) uint8


def jpeg_round_trip(image: torch.Tensor, quality: int) -> tuple[torch.Tensor, dict]:
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    settings = jpeg.jpeg_settings(buffer)  # what the file says about itself
    decoded = torch.from_numpy(np.array(Image.open(buffer))).permute(2, 0, 1)  # (3, 32, 32)
    return decoded, settings


change = {}
for quality in (75, 95):
    decoded, settings = zip(*(jpeg_round_trip(image, quality) for image in originals))
    assert all(s["quality"] == quality and s["subsampling"] == "4:2:0" for s in settings)
    change[quality] = (torch.stack(decoded).float() - originals.float()).abs().mean().item()
    print(f"quality {quality}: mean change {change[quality]:.2f} pixel levels (of 255) per value")
assert change[75] > change[95]
