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
    if name.startswith("model."):  # where tintn's ViT differs from the series' default
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
tintn_runs = [course_runs.record(recipes.run_name(TINTN.name, seed)) for seed in (0, 1, 2)]
tintn_runs = [r for r in tintn_runs if r is not None]  # the seeds that are shipped
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
ax.axhspan(100 * (SOURCE_TEST_ACC - GOAL), 100 * (SOURCE_TEST_ACC + GOAL), color="0.85",
           label=f"goal: within {100 * GOAL:.1f} points")
ax.set(xlabel="epoch", ylabel="test accuracy (%)",
       title=f"{TINTN.name}: {', '.join(sorted({r['data'] for r in tintn_runs}))}")
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
# ## Notebook 08's stand-in and mbastola's fine-tuning, as published
#
# Notebook 08 fine-tunes with three recipes; `transfer-mbastola` follows mbastola's
# "Vision Transformer (ViT) for Image Classification"
# ([neural-nets-in-python](https://github.com/mbastola/neural-nets-in-python)). Read from
# mbastola's notebook, its recipe is:
# - `vit_b_16(weights=ViT_B_16_Weights.IMAGENET1K_V1)`: every parameter frozen, then the last 3
#   encoder blocks and a new head unfrozen. The new head is `nn.Linear(768, 100)` with PyTorch's
#   default random init; the encoder's final LayerNorm sits outside the blocks and stays frozen.
# - Training images: `Resize((224, 224))`, `RandomHorizontalFlip()`, `RandomRotation(10)`,
#   ImageNet normalisation. Test images: the weights' own transform, `weights.transforms()`:
#   resize to 256, **centre-crop 224**, normalise.
# - `Adam(lr=1e-3)`, constant, no weight decay, cross-entropy, batches of 64, 5 epochs, fp32.
# - Reported: 80.31% on the CIFAR-100 test set after epoch 5 (its log calls it "Val. Acc").
#
# The stand-in's `transfer-mbastola` recipe copies the choices that carry over to a small model
# at 32 px: the last 3 blocks and a default-init head train and the final LayerNorm stays
# frozen; Adam at 1e-3, constant, without weight decay; plain cross-entropy; flip and rotation;
# batches of 64; 5 epochs. It is still not mbastola's notebook. The cell below lists every way
# it differs, mbastola's side quoted from its document and the stand-in's side read from the
# recipe and its data, with what each difference could cost or buy; the choices it shares are
# asserted.

# %%
import statistics

import torch
from torchvision.transforms import v2

from vit_core import ViTConfig
from vit_core.data import CIFAR10_CLASSES, TensorLoader, source_name
from vit_core.train import count_parameters, evaluate, freeze_all_but_last
from course import memory, recipes
from course import runs as course_runs

device, DATA = here.device, here.data
SEEDS = (0, 1, 2)
MBASTOLA = recipes.RECIPES["transfer-mbastola"]
BACKBONE = recipes.RECIPES["cifar5-backbone"]
DATASET = source_name("cifar10", DATA)
transfer_runs = [course_runs.get(MBASTOLA, seed, retrain=False, data_root=DATA, device=device) for seed in SEEDS]

# %%
stand_in_data = course_runs.loaders(MBASTOLA, DATA, device)   # the stand-in's train / val / test split
split = {name: len(loader.labels) for name, loader in stand_in_data.items()}
b16 = memory.meta_vit(ViTConfig.vit_b_16(num_classes=100))  # shapes only, no weights
small = memory.meta_vit(MBASTOLA.model)
freeze_all_but_last(b16, 3, train_norm=False)             # mbastola's freezing
freeze_all_but_last(small, MBASTOLA.trainable_blocks, train_norm=MBASTOLA.train_norm)
(b16_trains, b16_total), (small_trains, small_total) = count_parameters(b16), count_parameters(small)
model_cfg, train_cfg = MBASTOLA.model, MBASTOLA.train
held_out = split['val'] / (split['train'] + split['val'])  # fraction of the training images kept for validation
task = ", ".join(CIFAR10_CLASSES[c] for c in MBASTOLA.classes)
DEVIATIONS = [  # (setting, mbastola's notebook as published, the stand-in's transfer-mbastola, what the difference can cost or buy)
    ("pretrained model",
     "ViT-B/16 (L 12, D 768, P 16), torchvision IMAGENET1K_V1, pretrained on ImageNet-1k",
     f"the series' tiny ViT (L {model_cfg.depth}, D {model_cfg.dim}, P {model_cfg.patch_size}), {MBASTOLA.init_from}: pretrained on "
     f"CIFAR-10's {', '.join(CIFAR10_CLASSES[c] for c in BACKBONE.classes)}",
     "a far smaller model and pretraining set: the stand-in's accuracies say nothing about ViT-B/16's"),
    ("what trains",
     f"last 3 of 12 blocks + head: {b16_trains:,} of {b16_total:,} parameters ({b16_trains / b16_total:.1%})",
     f"last {MBASTOLA.trainable_blocks} of {model_cfg.depth} blocks + head: {small_trains:,} of {small_total:,} "
     f"({small_trains / small_total:.1%})",
     "the same rule freezes far less of the small model: its 'partial' fine-tuning is close to full fine-tuning"),
    ("task and data",
     "CIFAR-100 (torchvision): 100 classes, 50,000 training and 10,000 test images",
     f"{DATASET}, {len(MBASTOLA.classes)} classes ({task}): {split['train']:,} train, {split['val']:,} "
     f"validation, {split['test']:,} test images",
     f"an easier task (chance {1 / len(MBASTOLA.classes):.0%} instead of {1 / 100:.0%}): the accuracies of the two "
     "cannot be compared"),
    ("validation, selection",
     "none: every training image trains; the test set is scored after each epoch (logged as 'Val. Acc') and "
     "the last epoch, 5, is reported",
     f"{MBASTOLA.val_per_class} images per class held out "
     f"({held_out:.0%} of the training images); the weights of the best "
     f"validation epoch are tested (keep_best={MBASTOLA.keep_best})",
     f"costs {held_out:.0%} of the training images (not measured here); buys a guard against a worse last epoch "
     "under a constant learning rate (measured on the validation split below)"),
    ("image size",
     "32 px images resized to 224 px: 196 patches of upsampled pixels",
     f"{model_cfg.image_size} px, not resized: {model_cfg.num_patches} patches",
     "each model fine-tunes at the size it was pretrained at; the small model sees far fewer, coarser tokens"),
    ("training augmentation",
     "Resize(224), then RandomHorizontalFlip and RandomRotation(10) on the 224 px image",
     f"{MBASTOLA.augment}: the same flip and rotation on the 32 px image (vit_core.augment)",
     "the same operations; at 32 px each pixel is a bigger part of the image, so the rotation is coarser"),
    ("test view",
     "weights.transforms(): resize to 256, centre-crop 224 (a zoom training never used)",
     "the training view without augmentation; mbastola's zoom is measured separately below",
     "the recorded accuracies leave out what the mismatch costs; 'mbastola's test transform, measured' adds it"),
    ("normalisation",
     "ImageNet mean and std: its weights' statistics",
     f"{MBASTOLA.normalize} mean and std: its backbone's statistics",
     "none expected: each model gets the statistics it was pretrained with"),
    ("batches per epoch",
     "DataLoader(shuffle=True) keeps the last partial batch: 782 steps",
     f"TensorLoader drops the last partial batch: {len(stand_in_data['train'])} steps "
     f"({split['train'] % MBASTOLA.batch_size} images left out, different ones each epoch)",
     "negligible"),
    ("precision",
     "float32 on a GPU",
     f"float32 on a CPU; on a GPU amp={train_cfg.amp} turns on autocast (the runs' hardware is printed with them)",
     "none on a CPU; on a GPU, lower-precision rounding"),
    ("runs",
     "one (SEED = 42)",
     f"{len(SEEDS)} seeds ({', '.join(map(str, SEEDS))}), mean and spread reported",
     "buys an estimate of the run-to-run noise, which one run cannot give"),
]
for setting, published, stand_in, effect in DEVIATIONS:
    print(f"{setting}\n  mbastola:  {published}\n  stand-in:  {stand_in}\n  effect:    {effect}")
# What the stand-in shares with mbastola's notebook, checked on the recipe:
assert (train_cfg.optimizer, train_cfg.lr, train_cfg.schedule, train_cfg.warmup_epochs, train_cfg.weight_decay) == ("adam", 1e-3, "constant", 0, 0.0)
assert (train_cfg.label_smoothing, train_cfg.grad_clip, train_cfg.epochs, MBASTOLA.batch_size) == (0.0, None, 5, 64)
assert (MBASTOLA.trainable_blocks, MBASTOLA.train_norm, MBASTOLA.zero_head) == (3, False, False)
assert MBASTOLA.augment == "flip_rotate" and not MBASTOLA.mix and (model_cfg.dropout, model_cfg.attention_dropout,
                                                              model_cfg.drop_path) == (0, 0, 0)
print("\nthe same as mbastola's notebook: Adam 1e-3 constant, no weight decay, no warmup, no label smoothing, no gradient "
      "clipping, 5 epochs of batches of 64, no dropout; patch embedding, CLS token, position embeddings, the first "
      "blocks and the final LayerNorm frozen; a new head with nn.Linear's default init")

# %% [markdown]
# ### mbastola's last epoch and the stand-in's best epoch
#
# mbastola's notebook reported its last epoch; the stand-in tests the weights of its best
# validation epoch. What that choice gained, read from the validation curves of
# `transfer-mbastola`:

# %%
gains = []
for seed, (_, rec) in zip(SEEDS, transfer_runs):
    assert rec["curves_on"] == "val"  # the records' per-epoch held-out scores are on the validation split
    by_epoch = {h["epoch"]: h["test_acc"] for h in rec["history"]}
    chosen, last = by_epoch[rec["selected_epoch"]], by_epoch[max(by_epoch)]
    gains.append(chosen - last)
    print(f"seed {seed}: selected epoch {rec['selected_epoch']} of {max(by_epoch)}, validation accuracy {chosen:.1%} "
          f"vs {last:.1%} at the last epoch ({100 * (chosen - last):+.1f}p)")
print(f"mean gain of selecting over taking the last epoch: {100 * statistics.mean(gains):+.2f} points of validation "
      "accuracy (optimistic: the epoch was picked on this split)")

# %% [markdown]
# **What this shows.** Where the selected epoch is the last, selection changed nothing; where it
# is earlier, the printed gain is how much better the chosen epoch scored than the last one,
# which is what reporting the last epoch, as mbastola's notebook did, gives up.
#
# <details><summary>Caveats</summary>
#
# The gain on the test set is likely smaller, since the epoch was chosen on this very split;
# and what holding out the validation images cost (fewer training images) would need runs
# without a validation split.
#
# </details>
#
# ### mbastola's test transform, measured
#
# One difference in mbastola's notebook is easy to miss: its training images are the *whole*
# image resized to 224, while its test images are resized to 256 and then centre-cropped to
# 224, which keeps only the middle $224/256 = 87.5\%$ of each side and shows it
# $256/224 \approx 1.14\times$ larger. The model is tested on a zoom it never trained on. At
# 32 px the same transform is a centre crop of 28 px resized back to 32. The shipped
# `transfer-mbastola` models were tested with the transform they were trained with; evaluate
# them again with mbastola's test transform.

# %%
def mbastola_test_view(images: torch.Tensor, size: int) -> torch.Tensor:
    """mbastola's test transform on uint8 (B, C, s, s) images: keep the middle 224/256 of each
    side, resize to `size` (at 32 px: centre-crop 28, back to 32)."""
    crop = round(images.shape[-1] * 224 / 256)
    return v2.functional.resize(v2.functional.center_crop(images, [crop, crop]), [size, size], antialias=True)


print(f"{'seed':>4} | {'matching test view':>18} | {'mbastola test view':>18} | {'change':>7}")
changes = []
for seed, (model, _) in zip(SEEDS, transfer_runs):
    test = course_runs.loaders(MBASTOLA, DATA, device, seed)["test"]
    mean_, std_ = recipes.NORMALIZE[MBASTOLA.normalize]
    zoomed = TensorLoader(mbastola_test_view(test.images, 32), test.labels, 500, train=False, mean=mean_, std=std_,
                          device=device)
    matching, mbastola_view = evaluate(model, test)["acc"], evaluate(model, zoomed)["acc"]
    changes.append(mbastola_view - matching)
    print(f"{seed:>4} | {matching:>18.1%} | {mbastola_view:>18.1%} | {100 * (mbastola_view - matching):>+6.1f}p")
print(f"mean change from mbastola's test view: {100 * statistics.mean(changes):+.1f} points")
# The zoom keeps exactly the middle 28 x 28 pixels of a 32 px image (resizing 28 -> 28 is the identity):
image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
assert torch.equal(mbastola_test_view(image, 28), image[..., 2:30, 2:30])

# %% [markdown]
# **What this shows.** The sign and size of the change printed above is what the mismatch
# costs this small model at 32 px. Train and test preprocessing should be chosen together, not
# copied from two places.
#
# <details><summary>Caveats</summary>
#
# On ViT-B/16 at 224 px the effect can differ: a model pretrained with random-resized crops has
# seen zooms like this one. Notebook 08's real path tests both of its recipes with the matching
# view (resize 32 to 224, no crop), not with mbastola's.
#
# </details>

# %% [markdown]
# ## Notebook 09's scratch arm and the ViTCatsVDogs project
#
# The ViTCatsVDogs project trained a ViT from scratch on a folder of cat and dog images. Its
# document publishes no training hyperparameters (epochs, learning rate, batch size and
# normalisation are set in a `params.json` it does not show), does not name its dataset or its
# size, and shows ViT classes whose defaults are 224 px images, 16 px patches and 12 blocks of
# width 768, without saying which configuration produced its log. That log ends at epoch 10
# with the training and validation accuracies printed below; over the 4 epochs the log shows,
# training accuracy rises every epoch, validation accuracy stays level and validation loss
# only rises. A train/validation gap that wide means overfitting: the model fits its training
# photos far better than new ones. Its validation score is that of an overfitting model read
# at its last epoch, not a test score; notebook 09's runs differ in data, image size and
# model, so the comparison says only whether the two land in the same range.

# %%
def seed_mean(accs: list[float]) -> float:
    return torch.tensor(accs, dtype=torch.float64).mean().item()


def catdog_record(name: str, seed: int) -> dict:
    return course_runs.get_record(recipes.RECIPES[name], seed, retrain=False, data_root=DATA, device=device)


FULL = recipes.CAT_DOG_SIZES[-1]
catdog = {arm: [catdog_record(f"catdog-{arm}-{FULL}", s)["test_acc"] for s in SEEDS] for arm in ("scratch", "pretrained")}
long_accs = [catdog_record("catdog-scratch-long", s)["test_acc"] for s in SEEDS]
VITCATSVDOGS = {"epoch": 10, "train_acc": 0.9479, "val_acc": 0.6436}  # the ViTCatsVDogs project, as published: the last line of its log
print(f"the ViTCatsVDogs project, as published (from scratch, its log at epoch {VITCATSVDOGS['epoch']}): "
      f"train {VITCATSVDOGS['train_acc']:.1%}, validation {VITCATSVDOGS['val_acc']:.1%}, "
      f"a gap of {100 * (VITCATSVDOGS['train_acc'] - VITCATSVDOGS['val_acc']):.1f} points")
scratch = seed_mean(catdog["scratch"])
print(f"notebook 09's scratch arm, {FULL:,} images per class: {scratch:.1%} test, "
      f"{'at or above' if scratch >= VITCATSVDOGS['val_acc'] else 'below'} the ViTCatsVDogs project's validation "
      "accuracy (different data, image size and model)")
print(f"scratch with 4x the steps: {seed_mean(long_accs):.1%} test vs the ViTCatsVDogs project's "
      f"{VITCATSVDOGS['val_acc']:.1%} validation from scratch; pretrained with 1x: {seed_mean(catdog['pretrained']):.1%}")

# %% [markdown]
# **What this shows.** Whether the small scratch model of notebook 09 lands in the same range as
# the ViTCatsVDogs project's from-scratch ViT, printed above. Notebook 09's selection table
# (train and validation accuracy at the selected and the last epoch) shows the same pattern
# the ViTCatsVDogs log shows: training accuracy still rising after the best validation epoch;
# the train/validation gap at the selected epoch reads like the ViTCatsVDogs project's gap.
#
# <details><summary>Caveats</summary>
#
# Different photos (the ViTCatsVDogs project's unnamed folder against 32 px CIFAR-10), a
# different and unstated model and budget, and a validation score read at the last epoch
# against a test score read at the best validation epoch: the two numbers are not comparable
# beyond their range.
#
# </details>

# %% [markdown]
# ## Exercises
#
# 1. **The luck of the last epoch.** For each shipped `tintn` run, in how many of its last 10
#    epochs was the test accuracy within the goal's band around tintn's published number? What
#    does that say about reporting the accuracy of the last epoch of a constant-step-size run?
# 2. **The copy remembers its settings.** The images here were decoded from JPEG files (when
#    the data line says so). Encode 100 test images again with Pillow at qualities 50, 75 and
#    95 with chroma 4:2:0, and at 75 with 4:4:4; decode them and measure the mean absolute change
#    per pixel value. Check with `course.jpeg.jpeg_settings` that each new file says which
#    settings made it. Which setting changes the images least, and why?
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
    print(f"seed {r['seed']}: {inside} of {len(last)} last epochs within {100 * GOAL:.1f} points "
          f"of the source")
    assert 0 <= inside <= len(last)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: re-encode test images and compare the decoded pixels with the ones the notebook reads.
test_images, _ = load_tensors("cifar10", "test", DATA)
originals = test_images[:100]  # (100, 3, 32, 32) uint8


def jpeg_round_trip(image: torch.Tensor, quality: int, subsampling: str):
    """(decoded (3, 32, 32) uint8, the new file's settings) of `image` saved as a JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=quality,
                                                         subsampling=subsampling)
    settings = jpeg.jpeg_settings(buffer)  # what the new file says about itself
    decoded = torch.from_numpy(np.array(Image.open(buffer))).permute(2, 0, 1)  # (3, 32, 32)
    return decoded, settings


change = {}
for quality, subsampling in [(50, "4:2:0"), (75, "4:2:0"), (95, "4:2:0"), (75, "4:4:4")]:
    decoded, settings = zip(*(jpeg_round_trip(image, quality, subsampling) for image in originals))
    assert all(s["quality"] == quality and s["subsampling"] == subsampling for s in settings)
    difference = torch.stack(decoded).float() - originals.float()  # (100, 3, 32, 32)
    change[quality, subsampling] = difference.abs().mean().item()
    print(f"quality {quality}, chroma {subsampling}: "
          f"mean change {change[quality, subsampling]:.2f} pixel levels (of 255)")
least = min(change, key=change.get)
print(f"least change: quality {least[0]}, chroma {least[1]} ({DATASET})")
if DATASET.startswith("CIFAR-10 (JPEG"):  # the files' own settings quantise the same way again
    assert least == (75, "4:2:0")
else:  # CIFAR-10's own pixels: the finer the quantisation, the smaller the change
    assert change[95, "4:2:0"] < change[50, "4:2:0"]
