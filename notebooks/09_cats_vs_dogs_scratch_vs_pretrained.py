# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/09_cats_vs_dogs_scratch_vs_pretrained.ipynb)
#
# # 09 · Cats vs dogs: a ViT from scratch vs a pretrained ViT
#
# The same model, the same training budget, the same schedule — trained once from random
# weights and once from weights pretrained on other images. The only difference is where the
# weights start, so any gap between the two curves is what pretraining bought.
#
# **What you will learn**
# - what a ViT does *not* assume about images (the *inductive bias* a convolution has built in:
#   locality, translation equivariance), and why that should make pretraining worth more to it;
# - how to run a fair scratch-vs-pretrained comparison: identical model, budget, schedule and
#   head initialisation, one plot, one table;
# - what pretraining buys as the labelled data shrinks (250, 1,000 and 4,500 images per class);
# - whether a trained model uses *where* its patches are, tested by scrambling them.
#
# **What this run found** (each measured below): at an equal, small step budget (about 1,000
# steps) pretraining helps at every size, but its gain is *smaller* at 250 images per class than
# at 4,500, against the usual prediction. That comparison is driven by the budget, not by the
# data size alone: at 4,500 images per class the scratch arm is still improving when it stops,
# and with 4x the steps it closes most of its gap. This run's scratch model also barely uses
# where its patches are, while the pretrained one does. This notebook trains no CNN: it compares
# a ViT with itself.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %% [markdown]
# **Two experiments.** The *real* experiment fine-tunes torchvision's ImageNet-1k ViT-B/16 on
# cat-vs-dog photos (Oxford-IIIT Pet, or a Kaggle-style folder you point to) and trains the same
# ViT-B/16 from scratch beside it. It needs a download (330 MB of weights, 800 MB of photos) and
# a GPU, so it runs only where both are there (never in the smoke profile, which does not
# download). The **offline experiment** always runs: a small ViT on the cat and dog classes of
# CIFAR-10, where "pretrained" means *pretrained on the other 8 CIFAR-10 classes*. That is a
# real transfer experiment (the backbone never sees a cat or a dog before fine-tuning), just a
# small one; its numbers are about 32 px CIFAR images, not about ImageNet transfer.

# %%
from pathlib import Path
import copy
import functools
import os
import statistics
from dataclasses import replace

import matplotlib.pyplot as plt
import torch

from vit_core import ViT, ViTConfig, from_torchvision
from vit_core.data import (CIFAR10_CLASSES, TensorLoader, image_folder_loader, load_tensors, pets_binary_loader,
                           source_name)
from vit_core.plots import plot_history, seed_table, show_images
from vit_core.attention_maps import shuffle_patches
from vit_core.train import TrainConfig, count_parameters, evaluate, fit, replace_head
from course import figures, memory, pretrained, recipes
from course import runs as course_runs

device, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above

# %% [markdown]
# Every run of the offline experiment is a named recipe in `course.recipes`: `catdog-backbone`
# (pretraining on the 8 other classes), then `catdog-scratch-<n>` and `catdog-pretrained-<n>`
# for $n$ = 250, 1,000 and 4,500 training images per class, 3 seeds each. The trained runs are
# shipped in `data/checkpoints/`; `RETRAIN = True` trains them here instead (hours on a CPU).

# %%
RETRAIN = False  # True: train every run of the offline experiment here instead of loading the shipped ones
SEED, SEEDS = 0, (0, 1, 2)
BACKBONE = recipes.RECIPES["catdog-backbone"]
SIZES = recipes.CAT_DOG_SIZES                       # training images per class, each arm
ARMS = ("scratch", "pretrained")
MODEL = recipes.RECIPES[f"catdog-scratch-{SIZES[-1]}"].model  # 4 blocks, width 48, 4 px patches, 2 classes
PRETRAIN_CLASSES, TASK_CLASSES = recipes.NOT_CAT_DOG, recipes.CAT_DOG


def arm(name: str, per_class: int) -> recipes.Recipe:
    return recipes.RECIPES[f"catdog-{name}-{per_class}"]


# The real experiment (full profile, GPU): ViT-B/16 at 224 px.
REAL_IMAGE_SIZE, REAL_BATCH_SIZE = 224, 64
REAL_FINETUNE = TrainConfig(epochs=10, lr=1e-4, warmup_epochs=1, weight_decay=0.05, seed=SEED)
CATS_DOGS_DIR = os.environ.get("CATS_DOGS_DIR")  # a Kaggle-style folder with train/ and val/, each {cat,dog}/
REAL_ON_CPU = False                              # True: ViT-B/16 on a CPU anyway (hours)

# %% [markdown]
# ## What a ViT does not assume: inductive bias
#
# A convolution computes every output pixel from a small window with the *same* kernel $w$:
#
# $$y[i, j] = \sum_{|a|, |b| \le k} w[a, b]\; x[i + a,\, j + b].$$
#
# Two assumptions about images are built into that formula before any training: **locality**
# (a pixel depends on its neighbours) and **translation equivariance** (shift the input by
# $s$ and the output shifts by $s$: $\mathrm{conv}(T_s x) = T_s\, \mathrm{conv}(x)$, so a cat
# detector learned in one corner works in every corner). These assumptions are the CNN's
# *inductive bias*: knowledge it does not have to learn from data.
#
# A ViT keeps almost none of it. Locality survives only *inside* one patch (the patch embedding).
# Self-attention connects every token to every other from the first layer, and it does not
# know their order at all: for any permutation matrix $\Pi$ of the tokens (notebook 05 proves it),
#
# $$\mathrm{Encoder}(\Pi X) = \Pi\, \mathrm{Encoder}(X),$$
#
# because every token is processed by the same weights and attention only compares tokens by
# content. The only place the 2-D layout enters is the learned position embedding
# $E_\text{pos}$, which starts as random noise. Which patch is next to which, and that a
# shifted cat is still a cat, must be learned from examples. That is why, in the ViT paper,
# ViTs trail comparable ResNets when trained on ImageNet-1k (1.3 million images) alone, draw
# level with ImageNet-21k (14 million) and pull ahead only with JFT-300M (300 million) — and
# why pretrained weights should be worth much to a ViT on a small dataset. (This notebook does
# not train a CNN; the paper's comparison is quoted, not measured here.)
#
# Both claims can be checked on a `vit_core` model in a few lines. First, the encoder commutes
# with shuffling the tokens:

# %%
torch.manual_seed(SEED)
probe = ViT(replace(MODEL, cls_only_last_block=False)).eval()  # every token through every block
x, y = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)
images = torch.cat([x[y == 3][:2], x[y == 5][:2]]).float() / 255  # (4, 3, 32, 32): two cats, two dogs, in [0, 1]
tokens = probe.embed(images)  # (B, T, D): CLS and N patch tokens, positions added
perm = torch.randperm(tokens.shape[1])
with torch.no_grad():
    out = probe.encoder(tokens)  # (B, T, D)
    out_of_shuffled = probe.encoder(tokens[:, perm])  # (B, T, D): the encoder of Pi X
print(f"max |Encoder(ΠX) - Π Encoder(X)| = {(out_of_shuffled - out[:, perm]).abs().max():.1e}")
assert torch.allclose(out_of_shuffled, out[:, perm], atol=1e-5)

# %% [markdown]
# Second, without position embeddings a ViT cannot tell an image from the same image with its
# patches scrambled: the CLS token sees the same set of patch tokens either way. Scramble the
# patches of a few images, zero the position embeddings of a copy of the model, and compare
# logits.

# %%
patch_perm = torch.randperm(MODEL.num_patches, generator=torch.Generator().manual_seed(SEED))
scrambled = shuffle_patches(images, MODEL.patch_size, patch_perm)
no_positions = copy.deepcopy(probe)
with torch.no_grad():
    no_positions.pos_embed.zero_()
    same = (no_positions(images) - no_positions(scrambled)).abs().max().item()
    with_pos = (probe(images) - probe(scrambled)).abs().max().item()
print(f"no position embeddings:   max |logits(image) - logits(scrambled)| = {same:.1e}")
print(f"with position embeddings: max |logits(image) - logits(scrambled)| = {with_pos:.1e}")
assert same < 1e-5 and with_pos > 1e-4
names = ["cat", "cat", "dog", "dog"]
fig = show_images(torch.cat([images, scrambled]), names + [f"{n}, scrambled" for n in names], ncols=4, scale=1.6)
fig.suptitle(f"the same patches in a random order, {source_name('cifar10', DATA)} test images", y=1.02)
figures.save(fig, FIGURES / "09_cats_vs_dogs_scratch_vs_pretrained_scrambled")
plt.show()

# %% [markdown]
# **What this shows.** Top row: two cats and two dogs from the test set. Bottom row: the same
# images with their patches moved by one fixed permutation; every pixel is still there, only
# the layout is gone. The two printed differences say that a ViT without position embeddings
# gives both rows the same logits (up to float rounding), and that one with position embeddings
# does not. How much a *trained* model relies on positions is tested further down.
#
# <details><summary>Caveats</summary>
#
# This model has random weights, so the size of its difference means nothing. The equality
# holds because the copy's position embeddings are all zero; any that differ between patches,
# random as here or learned, break it.
#
# </details>
#
# ## The real experiment: ImageNet ViT-B/16 on cat-vs-dog photos
#
# The data: Oxford-IIIT Pet's binary labels (cat = 0, dog = 1; 3,680 training and 3,669 test
# photos, downloaded by torchvision), or any folder laid out like Kaggle's Dogs-vs-Cats split
# into `train/{cat,dog}` and `val/{cat,dog}` — set the environment variable `CATS_DOGS_DIR` to it.
# The pretrained arm: torchvision's `vit_b_16(weights=IMAGENET1K_V1)`, copied into
# `vit_core.ViT` by `from_torchvision`. The scratch arm: the same ViT-B/16 shape with random
# weights. Both get a new zeroed 2-way head and `REAL_FINETUNE`. A missing GPU (set
# `REAL_ON_CPU = True` to run it on a CPU anyway, for hours) or a missing download (offline, it
# fails within seconds) sends us to the offline experiment, with one printed line saying what
# is missing; `course.pretrained` keeps the full error in `pretrained.last_error`.

# %%
def real_data() -> dict:
    """{'train', 'test'} loaders of cat-vs-dog photos at 224 px, in batches a T4 holds, and their 'name'."""
    batch = memory.plan_batch(memory.meta_vit(ViTConfig.vit_b_16(num_classes=2)), REAL_BATCH_SIZE,
                              REAL_IMAGE_SIZE, REAL_FINETUNE, label="ViT-B/16 fine-tuning (real)")
    if CATS_DOGS_DIR:
        root = Path(CATS_DOGS_DIR)
        return dict(train=image_folder_loader(root / "train", REAL_IMAGE_SIZE, batch, train=True),
                    test=image_folder_loader(root / "val", REAL_IMAGE_SIZE, batch, train=False), name=f"folder {root}")
    return dict(train=pets_binary_loader("train", REAL_IMAGE_SIZE, batch, DATA, download=DOWNLOAD),
                test=pets_binary_loader("test", REAL_IMAGE_SIZE, batch, DATA, download=DOWNLOAD),
                name="Oxford-IIIT Pet (cat vs dog)")


OFFLINE = "the real experiment is SKIPPED; the OFFLINE experiment runs"
torchvision_b16 = pretrained.imagenet_vit_b16(device=device, on_cpu=REAL_ON_CPU, fallback=OFFLINE)
real = (pretrained.data_or_none("the cat-vs-dog photos", real_data, OFFLINE)  # {'train', 'test', 'name'}, or None
        if torchvision_b16 is not None else None)

# %%
def run_real(real, torchvision_b16):
    """Fine-tune ViT-B/16 from ImageNet weights and from scratch with identical settings."""
    imagenet = from_torchvision(torchvision_b16)  # torchvision's model as a vit_core.ViT
    histories = {}
    for arm in ("scratch", "pretrained"):
        torch.manual_seed(SEED)
        model = ViT(replace(imagenet.config)) if arm == "scratch" else copy.deepcopy(imagenet)
        replace_head(model, 2)
        print(f"--- {arm}: {model.config.depth} blocks, width {model.config.dim}, {count_parameters(model)[0]:,} trainable parameters")
        histories[arm] = fit(model, real["train"], real["test"], env.dev_run(REAL_FINETUNE), device=device,
                             out_dir=None if env.is_fast_dev_run() else DATA / "runs" / f"09_real_{arm}")
    return histories


def results_table(histories, seconds, starts):
    """One row per arm: final train and test accuracy, test loss, wall time. (No 'best test
    epoch' column: picking the best epoch by its test score would tune on the test set.)"""
    print(f"{'arm':<11} | {'start':<42} | {'train acc':>9} | {'test acc':>8} | {'test loss':>9} | {'time':>6}")
    print("-" * 97)
    for arm, history in histories.items():
        last = history[-1]
        print(f"{arm:<11} | {starts[arm]:<42} | {last['train_acc']:>9.1%} | {last['test_acc']:>8.1%} | "
              f"{last['test_loss']:>9.3f} | {seconds[arm]:>5.0f}s")


real_histories = run_real(real, torchvision_b16) if real is not None else None

# %%
if real_histories is not None:
    fig = plot_history(real_histories, title=f"Cat vs dog, {real['name']}: ViT-B/16 from scratch vs ImageNet weights")
    figures.save(fig, FIGURES / "09_cats_vs_dogs_scratch_vs_pretrained_real_curves")
    plt.show()
    results_table(real_histories, {arm: sum(h["seconds"] for h in hist) for arm, hist in real_histories.items()},
                  {"scratch": "random", "pretrained": "ImageNet-1k (torchvision IMAGENET1K_V1)"})
else:
    print("no real-experiment results in this run: the numbers below are from the OFFLINE experiment")

# %% [markdown]
# ## The offline experiment: pretrain on 8 CIFAR-10 classes, transfer to cat vs dog
#
# CIFAR-10 has 5,000 training and 1,000 test images per class. The pretraining set is the 8
# classes that are neither cat nor dog (airplane, automobile, bird, deer, frog, horse, ship,
# truck); the task is cat vs dog. Both carve a validation split out of their training images.
# Cat vs dog is the pair of CIFAR-10 classes that classifiers confuse most often (notebook 06's
# confusion matrix shows it for our model), so expect modest numbers from a 0.1 M-parameter model
# on 32 px images.

# %%
DATASET = source_name("cifar10", DATA)
backbone_data = course_runs.loaders(BACKBONE, DATA, device)
task_data = course_runs.loaders(arm("scratch", SIZES[-1]), DATA, device)
assert not set(PRETRAIN_CLASSES) & set(TASK_CLASSES), "the backbone must never see a cat or a dog"
print(f"data: {DATASET}")
for name, data, classes in (("pretraining", backbone_data, PRETRAIN_CLASSES), ("cat vs dog", task_data, TASK_CLASSES)):
    sizes = ", ".join(f"{len(loader.labels):,} {split}" for split, loader in data.items())
    print(f"{name:>12}: {sizes} images; {len(classes)} classes ({', '.join(CIFAR10_CLASSES[c] for c in classes)})")

# %%
x, y = task_data["train"].images.cpu(), task_data["train"].labels.cpu()
examples = torch.cat([x[y == 0][:8], x[y == 1][:8]])  # 8 cats, then 8 dogs
fig = show_images(examples, ["cat"] * 8 + ["dog"] * 8, ncols=8, scale=1.05)
fig.suptitle(f"the task: cat (label 0) vs dog (label 1), {DATASET}", y=1.02)
figures.save(fig, FIGURES / "09_cats_vs_dogs_scratch_vs_pretrained_examples")
plt.show()

# %% [markdown]
# **What this shows.** The first eight cats and eight dogs of the task's training split (not
# picked by hand), as the models get them before augmentation, enlarged for display. At 32 px
# the parts that tell a cat from a dog (ears, snout, body shape) cover a few pixels, a few
# patches of the ViT, while pose, colour and background vary widely within each class.
#
# `trained(recipe, seed)` returns a shipped model and its record (or trains it here when
# `RETRAIN = True`; in the smoke profile it also trains a scaled-down copy, whose numbers mean
# nothing); `record(recipe, seed)` reads the runs that ship as records only.

# %%
# trained(recipe, seed) -> (model, record); record(recipe, seed) -> record: shipped, or trained here (course.runs)
trained = functools.partial(course_runs.get, retrain=RETRAIN, data_root=DATA, device=device)
record = functools.partial(course_runs.get_record, retrain=RETRAIN, data_root=DATA, device=device)


def seed_mean(accs: list[float]) -> float:
    """Mean over seeds, computed as seed_table computes it (float64 torch): one number, so one
    rounding, wherever it is printed."""
    return torch.tensor(accs, dtype=torch.float64).mean().item()


def seed_std(accs: list[float]) -> float:
    """Sample standard deviation over seeds (n - 1), as seed_table computes it."""
    return torch.tensor(accs, dtype=torch.float64).std().item()


# %% [markdown]
# ### Step 1: pretraining
#
# The backbone learns to tell the 8 other classes apart. Whatever it learns about edges, fur,
# legs and where things sit in a 32 px frame is what can transfer; its 8-way head is thrown
# away (`replace_head` gives each fine-tuned model a new, zeroed 2-way head).

# %%
backbone, backbone_record = trained(BACKBONE)
print(f"{BACKBONE.about}\n-> {backbone_record['test_acc']:.1%} test accuracy on the 8 classes "
      f"(chance {1 / len(PRETRAIN_CLASSES):.1%}), {len(backbone_record['history'])} epochs, "
      f"{backbone_record['train_seconds'] / 60:.0f} min on {backbone_record['hardware']}")
fig = plot_history({"backbone": backbone_record["history"]}, held_out="val",
                   title=f"catdog-backbone: 8 classes without cat and dog, {DATASET}",
                   num_classes=len(PRETRAIN_CLASSES))
figures.save(fig, FIGURES / "09_cats_vs_dogs_backbone_curves")
plt.show()

# %% [markdown]
# **What this shows.** The backbone learned its 8 classes well above chance, and its
# validation curve flattens by the last epochs: a trained feature extractor that has never seen
# a cat or a dog. It does not show which of its features will help on cats and dogs; only the
# transfer below can.
#
# ### Step 2: both arms at full size, 3 seeds each
#
# At 4,500 training images per class each run takes about 1,000 optimiser steps of 64 images
# (7 epochs); every epoch is scored on the validation split, and the best epoch is tested.
#
# How this scratch arm compares with the ViTCatsVDogs project's from-scratch ViT: see the
# appendix, notebook 13.

# %%
full = {a: [trained(arm(a, SIZES[-1]), seed) for seed in SEEDS] for a in ARMS}  # [(model, record)] per seed
records = {a: [rec for _, rec in runs] for a, runs in full.items()}
fig = plot_history({a: records[a][0]["history"] for a in ARMS}, held_out="val",
                   title=f"cat vs dog, {SIZES[-1]:,} images per class, seed 0: same ViT and steps, two starts\n{DATASET}",
                   num_classes=2)
figures.save(fig, FIGURES / "09_cats_vs_dogs_scratch_vs_pretrained_curves")
plt.show()

# %%
print(f"cat vs dog, {SIZES[-1]:,} training images per class, {records['scratch'][0]['test_images']:,} test images, "
      f"{DATASET}\n")
print(f"{'seed':>4} | {'scratch':>8} | {'pretrained':>10} | {'gap':>7} | {'best val epoch (s / p)':>22}")
print("-" * 64)
for s, rs, rp in zip(SEEDS, records["scratch"], records["pretrained"]):
    print(f"{s:>4} | {rs['test_acc']:>8.1%} | {rp['test_acc']:>10.1%} | {100 * (rp['test_acc'] - rs['test_acc']):>+6.1f}p | "
          f"{rs['selected_epoch']:>10} / {rp['selected_epoch']}")
print()
print(seed_table({a: [r["test_acc"] for r in records[a]] for a in ARMS}, list(SEEDS)))
mean = {a: seed_mean([r["test_acc"] for r in records[a]]) for a in ARMS}
gaps = [rp["test_acc"] - rs["test_acc"] for rs, rp in zip(records["scratch"], records["pretrained"])]
print(f"\npretrained - scratch: {100 * (mean['pretrained'] - mean['scratch']):+.1f} points on average, "
      f"{100 * min(gaps):+.1f} to {100 * max(gaps):+.1f} across seeds")

# %% [markdown]
# **What this shows.** With the same model, data and number of steps, the pretrained start ends
# ahead with every seed: what the backbone learned on other classes carries over to cats and
# dogs. The scratch arm's spread across seeds is wide; one seed would not be a result.
#
# <details><summary>Caveats</summary>
#
# 2,000 test images put the standard error of one accuracy near 1 point. The scratch arm is
# limited by its budget here (about 1,000 steps); the last section gives it four times as many
# steps, to see whether that, rather than the data, is what holds it back.
#
# </details>
#
# ### Does either model use *where* the patches are?
#
# Only the position embeddings tell a ViT an image from its scrambled version. So scramble the
# patches of every test image (the same permutation for all) and evaluate the full-size models
# of every seed again. Scrambling keeps every patch's pixels and only moves them, so the drop in
# accuracy measures how much a model's decisions depend on *where* things are: a model that
# classifies from a bag of patch contents (colour, texture) barely notices.

# %%
def accuracy_scrambled(model, recipe, seed, perm) -> tuple[float, float]:
    """(test accuracy, test accuracy with every image's patches moved by `perm`)."""
    test = course_runs.loaders(recipe, DATA, device, seed)["test"]
    mean, std = recipes.NORMALIZE[recipe.normalize]
    scrambled = TensorLoader(shuffle_patches(test.images, MODEL.patch_size, perm), test.labels, test.batch_size,
                             train=False, mean=mean, std=std, device=device)
    return evaluate(model, test)["acc"], evaluate(model, scrambled)["acc"]


patch_perm = torch.randperm(MODEL.num_patches, generator=torch.Generator().manual_seed(SEED))
print(f"{'arm':<11} | {'seed':>4} | {'test acc':>8} | {'patches scrambled':>17} | {'change':>7}")
print("-" * 60)
drops = {a: [] for a in ARMS}
for a in ARMS:
    for s, (model, _) in zip(SEEDS, full[a]):
        normal, shuffled = accuracy_scrambled(model, arm(a, SIZES[-1]), s, patch_perm)
        drops[a].append(normal - shuffled)
        print(f"{a:<11} | {s:>4} | {normal:>8.1%} | {shuffled:>17.1%} | {100 * (shuffled - normal):>+6.1f}p")
print(f"\nmean drop: " + ", ".join(f"{a} {100 * statistics.mean(d):.1f} points" for a, d in drops.items()))

# %% [markdown]
# **What this shows.** The surprise: *this run's* scratch model barely uses where its patches
# are. Scrambling every test image costs it 0.1 points on average (the "mean drop" line), so
# after its short training it classifies cats and dogs from a bag of patch contents, colour and
# texture. The pretrained model loses 7.0 points: it learned, on the 8 other classes, to use the
# layout, and kept using it on cats and dogs.
#
# <details><summary>Caveats</summary>
#
# One fixed permutation for all test images, and three seeds. Read a drop against the accuracy
# above chance (50%), not against a perfect score. This is not a property of ViTs trained from
# scratch: this scratch model is a binary one, under-trained (it stops while still improving),
# and notebook 02's trained 10-class model loses a lot on the same kind of scramble. The test
# does not say *which* positions
# matter; notebook 07's attention maps look at that.
#
# </details>
#
# ## Accuracy vs training-set size
#
# The inductive-bias argument predicts that the less labelled data there is, the more a
# pretrained start is worth. Each size gets the same number of optimiser steps (about 1,000),
# so small sets are seen for many more epochs.

# %%
sweep_records = {a: {n: [record(arm(a, n), s) for s in SEEDS] for n in SIZES} for a in ARMS}
sweep = {a: {n: [r["test_acc"] for r in sweep_records[a][n]] for n in SIZES} for a in ARMS}
print(f"{'images per class':>16} | {'epochs':>6} | {'scratch':>14} | {'pretrained':>14} | {'gap':>6}")
print("-" * 70)
for n in SIZES:
    cells = {a: f"{seed_mean(sweep[a][n]):.1%} ± {seed_std(sweep[a][n]):.1%}" for a in ARMS}
    gap = seed_mean(sweep["pretrained"][n]) - seed_mean(sweep["scratch"][n])
    print(f"{n:>16,} | {arm('scratch', n).train.epochs:>6} | {cells['scratch']:>14} | {cells['pretrained']:>14} | "
          f"{100 * gap:>+5.1f}p")
size_gaps = {n: seed_mean(sweep["pretrained"][n]) - seed_mean(sweep["scratch"][n]) for n in SIZES}
env.expect(min(size_gaps.values()) > 0, "the pretrained start should be ahead at every size")
trend = "smaller" if size_gaps[SIZES[0]] < size_gaps[SIZES[-1]] else "larger"
print(f"\nat an equal budget of about 1,000 steps the gain is {trend} at {SIZES[0]} than at {SIZES[-1]:,} images per "
      f"class: " + ", ".join(f"{100 * size_gaps[n]:+.1f} points at {n:,}" for n in SIZES)
      + f" (means over seeds {', '.join(map(str, SEEDS))})")

fig, ax = plt.subplots(figsize=(6, 4))
for a, marker in (("scratch", "o"), ("pretrained", "s")):
    means = [100 * seed_mean(sweep[a][n]) for n in SIZES]
    stds = [100 * seed_std(sweep[a][n]) for n in SIZES]
    ax.errorbar(SIZES, means, yerr=stds, marker=marker, capsize=4, label=f"{a} (mean ± std, {len(SEEDS)} seeds)")
ax.axhline(50, color="grey", lw=0.8, ls=":", label="chance")
ax.set_xscale("log")
ax.set_xticks(SIZES, [f"{n:,}" for n in SIZES])
ax.minorticks_off()  # only the three sizes measured
ax.set_ylim(45, None)
ax.set_xlabel("training images per class (cat, dog)")
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"Same ViT, ~1,000 steps each, {DATASET}", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=9)
figures.save(fig, FIGURES / "09_cats_vs_dogs_scratch_vs_pretrained_data_size")
plt.show()

# %% [markdown]
# **What this shows.** At an equal, small step budget pretraining helps at every size, but it
# adds +7.4 points at 250 images per class against +11.4 at 4,500 (the last line above), the
# opposite of the inductive-bias prediction. Do not read that as "the gain does not grow as data
# shrinks": the budget is the same number of steps, so a run sees its data 143 times at 250
# images per class but only 7 times at 4,500 (the epochs column), where the scratch arm is
# still improving when it stops (the selection table below). The last section gives it 4x the
# steps.
#
# <details><summary>Caveats</summary>
#
# A fixed step budget compares *starts*, not converged models. Three seeds per point; the error
# bars are their sample standard deviation.
# The backbone is small and pretrained on 8 CIFAR-10 classes: with ImageNet pretraining the
# trend can differ.
#
# </details>

# %%
def at_epoch(rec: dict, epoch: int, key: str) -> float:
    """A record's per-epoch value; its held-out curve ('test_acc' in the history) is on the validation split."""
    return next(h[key] for h in rec["history"] if h["epoch"] == epoch)


print(f"{'arm':<11} | {'per class':>9} | {'selected epoch per seed':>25} | {'train acc: selected -> last':>27} | "
      f"{'val acc: selected -> last':>25}")
print("-" * 111)
selection = {}
for n in SIZES:
    for a in ARMS:
        recs = sweep_records[a][n]
        last = max(h["epoch"] for h in recs[0]["history"])
        chosen = [r["selected_epoch"] for r in recs]
        train = [seed_mean([at_epoch(r, r["selected_epoch"], "train_acc") for r in recs]),
                 seed_mean([at_epoch(r, last, "train_acc") for r in recs])]
        val = [seed_mean([at_epoch(r, r["selected_epoch"], "test_acc") for r in recs]),
               seed_mean([at_epoch(r, last, "test_acc") for r in recs])]
        selection[a, n] = dict(chosen=chosen, last=last, train=train, val=val)
        print(f"{a:<11} | {n:>9,} | {f'{chosen} of {last}':>25} | {f'{train[0]:.1%} -> {train[1]:.1%}':>27} | "
              f"{f'{val[0]:.1%} -> {val[1]:.1%}':>25}")
print("(means over seeds; training accuracy as logged during each epoch, on augmented images)\n")
for a in ARMS:
    sel = selection[a, SIZES[0]]
    if all(e == sel["last"] for e in sel["chosen"]):
        print(f"{a}, {SIZES[0]} per class: the last epoch was the best on validation in every seed")
        continue
    print(f"{a}, {SIZES[0]} per class: validation selected epochs {sel['chosen']} of {sel['last']}; after them training "
          f"accuracy went {100 * (sel['train'][1] - sel['train'][0]):+.1f} points and validation accuracy "
          f"{100 * (sel['val'][1] - sel['val'][0]):+.1f} points; at the selected epoch training leads validation by "
          f"{100 * (sel['train'][0] - sel['val'][0]):.1f} points")
still_best = [f"{a} at {n:,}" for (a, n), sel in selection.items() if all(e == sel["last"] for e in sel["chosen"])]
print(f"best validation epoch = last epoch in every seed: {', '.join(still_best) or 'none'}")

# %% [markdown]
# **Reading the selection.** A selected epoch equal to the last means the run was still at its
# best when it stopped: more steps might have helped. A selected epoch before the last, with
# training accuracy rising after it and validation accuracy falling, means the run went on
# fitting its own images past the point where that helped new ones, and selection kept an
# earlier state. The wider the train/validation gap at the selected epoch, the more the model
# has fitted its particular images: at 250 images per class the pretrained arm's gap is the
# widest of all.
#
# <details><summary>Caveats</summary>
#
# The test accuracy of the last epochs is not shown: the test set is read once per run.
#
# </details>
#
# ## More steps for the scratch arm
#
# `catdog-scratch-long` is the full-size scratch arm with four times the steps (28 epochs), the
# same settings otherwise. If the scratch arm was held back by its budget, it climbs here.

# %%
long = [record(recipes.RECIPES["catdog-scratch-long"], s) for s in SEEDS]
long_accs = [r["test_acc"] for r in long]
print(seed_table({"scratch 7 ep.": sweep["scratch"][SIZES[-1]], "scratch 28 ep.": long_accs,
                  "pretrained 7 ep.": sweep["pretrained"][SIZES[-1]]}, list(SEEDS)))
short_acc, long_acc, pre_acc = seed_mean(sweep["scratch"][SIZES[-1]]), seed_mean(long_accs), mean["pretrained"]
print(f"\nscratch at {SIZES[-1]:,} images per class: {short_acc:.1%} with ~1,000 steps, {long_acc:.1%} with 4x "
      f"the steps ({100 * (long_acc - short_acc):+.1f} points)")
print(f"remaining gap to pretrained (1x steps, {pre_acc:.1%}): {100 * (pre_acc - long_acc):+.1f} points, against "
      f"{100 * size_gaps[SIZES[0]]:+.1f} at {SIZES[0]} images per class")
print(f"the extra steps closed {(long_acc - short_acc) / (pre_acc - short_acc):.0%} of the scratch arm's deficit")

# %% [markdown]
# **What this shows.** Most of the scratch arm's deficit at 4,500 images per class was budget:
# 4x the steps lift it from 61.2% to 70.4%, 80% of its gap, leaving +2.2 points to the
# pretrained arm, less than the +7.4 at 250 images per class. So once the largest set gets
# enough steps, the gain comes out larger for less data, as predicted; the equal-budget sweep
# said the opposite because its budget starved the largest set (the scratch arm at 250 images
# per class peaked before its last epoch, so more steps would not help it). The budget, not the
# data size alone, drove that comparison. The pretrained arm got there with a quarter of the
# steps:
# pretraining buys accuracy *and* compute, which is why fine-tuning is the default for ViTs on
# small datasets.
#
# ## Summary, from this run's numbers

# %%
print("real experiment:", "ran (see above)" if real_histories else "not run (reason printed above)")
print(f"offline experiment ({DATASET}; 'pretrained' = pretrained on the 8 non-cat/dog classes, "
      f"{backbone_record['test_acc']:.1%} on those):")
for n in SIZES:
    print(f"  {n:>5,} images per class: scratch {seed_mean(sweep['scratch'][n]):.1%}, "
          f"pretrained {seed_mean(sweep['pretrained'][n]):.1%}, gain {100 * size_gaps[n]:+.1f} points")
print(f"  at equal steps the gain is {trend} at {SIZES[0]} than at {SIZES[-1]:,} per class; with 4x the steps the "
      f"{SIZES[-1]:,} gap falls to {100 * (pre_acc - long_acc):+.1f} points")
print(f"  scrambled patches cost scratch {100 * statistics.mean(drops['scratch']):.1f} points, pretrained "
      f"{100 * statistics.mean(drops['pretrained']):.1f} (full size, mean of {len(SEEDS)} seeds)")
print(f"  scratch with 4x the steps at {SIZES[-1]:,}: {long_acc:.1%}")

# %% [markdown]
# ## Exercises
#
# 1. **Which blocks carry the transfer?** Fine-tune the shipped backbone on cat vs dog with
#    only its head trainable (a *linear probe*: `freeze_all_but_last(model, 0)`), and compare
#    with the full fine-tuning above. How much of the gain does the frozen body already give?
# 2. **Positions, scrambled at training time.** Train a scratch arm (scaled down) on images
#    whose patches are all moved by one fixed permutation, and test it on equally scrambled
#    images. Why does a ViT lose nothing here, where a CNN would?
# 3. **The head's start.** `replace_head` zeroes the new head. Check that a zeroed head gives
#    exactly 50/50 predictions for every image before training, and that nn.Linear's default
#    init does not.
# 4. **Mean pooling against CLS, with little data (open).** The scratch arm at 250 images per
#    class reads its prediction from the CLS token. Train it with `pool="mean"` instead (the
#    head reads the average of the patch tokens; no CLS token, so set
#    `cls_only_last_block=False`), 3 seeds, and compare with the sweep's table. Does averaging
#    help a model that, as the scrambled-patches test showed, reads a bag of patches anyway?
#    The cell below starts you off with one short run.
#
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: a linear probe on the shipped backbone (a short run: 3 epochs in full; in smoke 1 epoch on
# 256 images per class).
probe_recipe = replace(arm("pretrained", SIZES[-1]), name="catdog-linear-probe", trainable_blocks=0, train_norm=False,
                       train=replace(arm("pretrained", SIZES[-1]).train, epochs=env.pick(full=3, smoke=1), lr=1e-2))
if env.is_smoke():
    probe_recipe = recipes.scaled_down(probe_recipe, epochs=1, steps=20, train_per_class=256)
print("(per-epoch lines: their 'test' columns are on the validation split)")
probe_model, probe_record = course_runs.run(probe_recipe, DATA / "runs" / f"09_{probe_recipe.name}", DATA, device=device,
                                        progress=False)
trainable, total = count_parameters(probe_model)
print(f"linear probe: {trainable:,} of {total:,} parameters train; test {probe_record['test_acc']:.1%} "
      f"vs full fine-tuning {mean['pretrained']:.1%} and scratch {mean['scratch']:.1%}")
assert trainable == sum(p.numel() for p in probe_model.head.parameters())  # only the head
env.expect(probe_record["test_acc"] > 0.55, "the frozen backbone's features alone separate cats from dogs")

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: a ViT trained and tested on scrambled images is the same model as one on normal
# images with its position embeddings permuted: scrambling commutes with everything but the positions.
torch.manual_seed(SEED)
vit = ViT(replace(MODEL, cls_only_last_block=False)).eval()
moved = copy.deepcopy(vit)
with torch.no_grad():  # token n of the scrambled image is patch perm[n]: give it patch perm[n]'s position
    moved.pos_embed[:, 1:] = vit.pos_embed[:, 1:][:, patch_perm.argsort()]
imgs = task_data["test"].images[:8].float() / 255
with torch.no_grad():
    diff = (vit(shuffle_patches(imgs, MODEL.patch_size, patch_perm)) - moved(imgs)).abs().max().item()
print(f"max |ViT(scrambled) - ViT'(image)| with positions permuted: {diff:.1e}")
assert diff < 1e-4

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: a zeroed head gives every image the same two logits (0, 0): 50/50.
head_test = copy.deepcopy(backbone)
replace_head(head_test, 2)
with torch.no_grad():
    p = head_test(imgs).softmax(-1)
assert torch.allclose(p, torch.full_like(p, 0.5))
replace_head(head_test, 2, zero_init=False)
with torch.no_grad():
    p_default = head_test(imgs).softmax(-1)
print(f"zeroed head: every probability {p[0, 0]:.3f}; default init: p(cat) from {p_default[:, 0].min():.3f} "
      f"to {p_default[:, 0].max():.3f}")
assert not torch.allclose(p_default, torch.full_like(p_default, 0.5))


# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 4, a start: mean pooling on 250 images per class, one short run (its accuracy is not an
# answer: train the recipe's full budget, 3 seeds, for that).
small = arm("scratch", SIZES[0])
mean_pool = replace(small, name="catdog-scratch-250-meanpool",
                    model=replace(small.model, pool="mean", cls_only_last_block=False))
short = recipes.scaled_down(mean_pool, epochs=1, steps=env.pick(full=50, smoke=5))
pooled_model, pooled_record = course_runs.run(short, DATA / "runs" / "09_exercise_meanpool", DATA, device=device,
                                              progress=False)
assert pooled_model.config.seq_len == pooled_model.config.num_patches  # no CLS token: the head reads the mean
print(f"mean pooling, {pooled_model.config.seq_len} tokens; {course_runs.describe(pooled_record)}")
