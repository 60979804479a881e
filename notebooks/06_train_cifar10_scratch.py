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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/06_train_cifar10_scratch.ipynb)
#
# # 06 · Training a ViT on CIFAR-10 from scratch
#
# A Vision Transformer has almost no built-in idea of what an image is: no locality, no
# translation equivariance. On 50,000 small images that makes it hungry for data and for
# regularisation. This notebook takes the series' tiny ViT (48-dim tokens, 4 blocks, 4 heads,
# 4 × 4 patches; its parameter count is printed below), trains it with tintn's recipe **as its source ran
# it**, then with an improved recipe on the same model, and looks at what the trained model
# still gets wrong.
#
# **What you will learn**
# - what tintn's recipe ([vision-transformer-from-scratch](https://github.com/tintn/vision-transformer-from-scratch))
#   really was, read from its source code, and what it reaches;
# - four changes that help a small ViT: warmup then cosine decay, label smoothing, weight decay
#   that spares norms and embeddings, and pad-and-crop + flip;
# - why a recipe is chosen on a validation split carved from the training images, and the test
#   set is read once, at the end;
# - how to read learning curves, a confusion matrix and the misclassified images.
#
# **Trained models are shipped.** Training these models takes an hour or more on a laptop
# CPU, so the repository ships their weights (`data/checkpoints/`, about 0.5 MB each) with a
# JSON record of each run: recipe, per-epoch history, test accuracy, wall time, hardware and the
# git commit it ran from. By default this notebook loads them. Set `RETRAIN = True` below to
# train every recipe here instead, with exactly the code that made them (`course.recipes`,
# the same code as the command `python -m course.recipes run <name> --out <folder>`); the cell
# below prints how long each one took where it was made. A GPU does each run in minutes.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %%
RETRAIN = False  # True: train both recipes here (full profile) instead of loading the shipped checkpoints

# %%
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course import figures, jpeg, memory, recipes
from course import runs as course_runs
from vit_core import ViT
from vit_core.data import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, TensorLoader, load_tensors, source_name
from vit_core.plots import plot_confusion, plot_history, show_images
from vit_core.train import lr_factor, make_optimizer, predict

notebook_start = time.perf_counter()
device, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above
TINTN = recipes.RECIPES["tintn"]
IMPROVED = recipes.RECIPES["improved-cpu"]
for recipe in (TINTN, IMPROVED):
    found = course_runs.shipped(recipe.name)
    if found is None:
        print(f"{recipe.name:<13} no shipped checkpoint yet: RETRAIN = True trains it here")
    else:
        r = found[1]
        print(f"{recipe.name:<13} shipped: {r['test_acc']:.1%} test accuracy, trained in "
              f"{r['train_seconds'] / 60:.0f} min on {r['hardware']} (git {r['git_commit'][:7]})")
for recipe in (TINTN, IMPROVED):  # its training step on a 16 GB GPU (for RETRAIN = True)
    memory.estimate(memory.meta_vit(recipe.model), recipe.batch_size, recipe.model.image_size, recipe.train,
                    label=recipe.name)

# %% [markdown]
# ## The two recipes, side by side
#
# Both recipes are defined once, in `course.recipes` (`course.runs` runs them), and
# everything below reads them from there. The model has the same shape in both; the table lists
# every setting in which the recipes differ, three details of the model included.
#
# **tintn's recipe, as its source ran it.** The summary this series started from gives its recipe as
# `optim.Adam(lr=1e-2, weight_decay=1e-2)`, batch 256, 100 epochs, and reports 75.5 % test
# accuracy. The repository it credits (tintn/vision-transformer-from-scratch) builds
# `optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)` in `train.py`, with no learning-rate
# schedule, no gradient clipping, and weight decay on every tensor; its `data.py` trains on
# random horizontal flips and random resized crops (80–100 % of the area, aspect 3/4–4/3) of
# images normalised with mean = std = 0.5. That is what `tintn` does, and it builds the model
# the way tintn's `vit.py` does, with three `ViTConfig` options: no LayerNorm before the head
# (`final_norm=False`), every projection drawn from $\mathcal N(0, 0.02^2)$, the patch projection
# included (`init="normal"`; `vit_core`'s default draws it LeCun-normal, several times larger), and
# the tanh approximation of GELU (`gelu="tanh"`). At a constant step size of $10^{-2}$ such
# details can change how fast a model learns, so the seed's recipe runs on the seed's model here
# (the README records what we measured when it did not).

# %%
print(f"{'setting':<24}{TINTN.name:>14}{IMPROVED.name:>16}")
for name, va, vb in recipes.differences(TINTN, IMPROVED):  # every setting in which they differ
    print(f"{name:<24}{str(va):>14}{str(vb):>16}")
model_settings = {name for name, _, _ in recipes.differences(TINTN, IMPROVED) if name.startswith("model.")}
assert model_settings <= {"model.final_norm", "model.gelu", "model.init"}, "same shape: only these model details differ"

# %% [markdown]
# ## The data
#
# `load_tensors` decodes a split once into a `uint8` tensor of shape (N, 3, 32, 32) and caches
# it. `TensorLoader` keeps that tensor on the device and makes each batch there: shuffle,
# augment, convert to floats and normalise each channel $c$ as $(x_c - \mu_c)/\sigma_c$.
# The improved recipe also carves a **validation split** out of the training images (500 per
# class): its curves are drawn on it, and the test set is used once, at the end.

# %%
train_images, train_labels = load_tensors("cifar10", "train", DATA, download=DOWNLOAD)
test_images, test_labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)
DATASET = source_name("cifar10", DATA)
loaders = course_runs.loaders(IMPROVED, DATA, device)
print(f"{DATASET}: {len(train_labels):,} training images, {len(test_labels):,} test images")
for split, loader in loaders.items():
    print(f"  {IMPROVED.name} {split:<5} {len(loader.labels):>6,} images in batches of {loader.batch_size}")
assert len(loaders["train"].labels) + len(loaders["val"].labels) == len(train_labels)

# %% [markdown]
# ## What changes, one piece at a time
#
# **Pad-and-crop + flip.** Each training image is zero-padded by 4 px to 40 × 40, a random
# 32 × 32 window is cut out and, with probability ½, mirrored left–right. The label does not
# change, so the model sees $9 \cdot 9 \cdot 2 = 162$ variants of every image instead of one.
# `TensorLoader` draws the offsets and coin flips per image, for a whole batch at once. (The
# flip + resized crop of tintn's recipe goes through `torchvision.transforms.v2` image by image.)

# %%
x, y = next(iter(loaders["train"]))  # (B, 3, 32, 32) normalised
mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1)
std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1)
pixels = (x[:16] * std + mean).clamp(0, 1)  # undo the normalisation to look at them
fig = show_images(pixels, [CIFAR10_CLASSES[i] for i in y[:16].tolist()], ncols=8, scale=1.05)
fig.suptitle(f"augmented training batch: pad-4 random crop + horizontal flip, {DATASET}", y=1.02)
figures.save(fig, FIGURES / "06_augmented_batch")
plt.show()
assert x.shape == (IMPROVED.batch_size, 3, 32, 32) and abs(x.mean().item()) < 0.5  # roughly normalised

# %% [markdown]
# **What this shows.** What the model is trained on: every image shifted by up to 4 px (the
# black bands are the zero padding that the crop brings in) and flipped left-right half the
# time, a new draw every epoch. Both keep the label true. What it does not show: how much
# accuracy the augmentation buys; the recipes differ in several settings at once, so the
# comparison below measures the recipe, not each piece.

# %% [markdown]
# **Warmup, then cosine decay.** Over $S$ optimiser steps with $S_w$ warmup steps the step size is
# $$\eta(t) = \eta_{\max}\,\frac{t+1}{S_w} \quad (t < S_w), \qquad
# \eta(t) = \frac{\eta_{\max}}{2}\left(1 + \cos\frac{\pi\,(t - S_w)}{S - S_w}\right) \quad (t \ge S_w).$$
# ($S$ for steps: $T$ is the number of tokens in this series.)
# Early on, Adam's second-moment estimates are still noisy and a full-size step can wreck the
# fresh attention layers; at the end, small steps settle into a minimum. tintn's recipe keeps
# $\eta = 10^{-2}$ constant for all 100 epochs. Written out for the improved recipe's budget, the
# formula matches the schedule `fit` uses (`vit_core.train.lr_factor`):

# %%
def warmup_cosine(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * progress)).item())


steps_per_epoch = len(loaders["train"])
total_steps = IMPROVED.train.epochs * steps_per_epoch
warmup_steps = round(IMPROVED.train.warmup_epochs * steps_per_epoch)
schedule = [warmup_cosine(t, total_steps, warmup_steps, IMPROVED.train.lr) for t in range(total_steps)]
engine = [IMPROVED.train.lr * lr_factor(t, total_steps, warmup_steps, "cosine") for t in range(total_steps)]
assert torch.allclose(torch.tensor(schedule), torch.tensor(engine))
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(schedule, label=f"{IMPROVED.name}: warmup + cosine")
ax.axhline(TINTN.train.lr, color="C1", ls="--", label=f"{TINTN.name}: constant")
ax.set(xlabel="optimiser step", ylabel="learning rate", ylim=(0, None), title="learning rate per step")
ax.legend(fontsize=9)
figures.save(fig, FIGURES / "06_lr_schedule")
plt.show()
assert max(schedule) <= IMPROVED.train.lr and schedule[0] < 0.1 * IMPROVED.train.lr

# %% [markdown]
# **What this shows.** The improved recipe climbs to its peak step size over the warmup, then
# decays it smoothly towards zero by its last step; tintn's recipe's step size never changes.
# The schedule is the same function of the step whatever the data, so the plot is exact, not a
# measurement. Its cost or benefit shows only in the learning curves further down.

# %% [markdown]
# **Label smoothing.** Instead of the one-hot target, the loss uses
# $q_k = (1-\varepsilon)\,[k = y] + \varepsilon / K$ with $\varepsilon = 0.1$, so
# $\mathcal{L} = -\sum_k q_k \log p_k$. The model is no longer rewarded for pushing one logit to
# infinity, which keeps it from becoming over-confident on images it has memorised. Written out
# by hand, it equals PyTorch's built-in version:

# %%
logits = torch.randn(6, 10)
targets = torch.randint(0, 10, (6,))
eps = IMPROVED.train.label_smoothing
q = (1 - eps) * F.one_hot(targets, 10) + eps / 10  # (6, 10), every row sums to 1
by_hand = -(q * logits.log_softmax(dim=-1)).sum(dim=-1).mean()
assert torch.allclose(by_hand, F.cross_entropy(logits, targets, label_smoothing=eps))
print(f"label-smoothed loss by hand {by_hand:.5f} = F.cross_entropy {F.cross_entropy(logits, targets, label_smoothing=eps):.5f}")

# %% [markdown]
# **Weight decay that spares norms and embeddings.** AdamW shrinks every decayed weight by
# $\eta\lambda$ per step, separately from the adaptive step:
# $\theta \leftarrow \theta - \eta\,\big(\hat m / (\sqrt{\hat v} + \epsilon) + \lambda\,\theta\big)$.
# Pulling LayerNorm gains, biases, the CLS token and the position embeddings toward zero only
# removes information, so the improved recipe decays matrices alone (`decay_all=False`); the
# recipe of tintn decays everything.

# %%
groups = make_optimizer(ViT(IMPROVED.model), IMPROVED.train, torch.device("cpu")).param_groups
decayed, spared = (sum(p.numel() for p in g["params"]) for g in groups)
print(f"{IMPROVED.name}: weight decay {IMPROVED.train.weight_decay} on {decayed:,} weights, "
      f"0 on {spared:,} (norms, biases, CLS, positions)")
assert spared > 0 and groups[1]["weight_decay"] == 0.0

# %% [markdown]
# ## Trained models
#
# In the full profile this loads the shipped checkpoints, or trains a recipe here when
# `RETRAIN = True` (a missing checkpoint is reported, not silently trained for an hour). The
# smoke profile that CI runs trains both recipes on a scaled-down budget, only to show that the
# loop runs and learns, then loads the shipped checkpoints. A scaled-down model stands in for a
# recipe that is not shipped, and says so.

# %%
def scaled_down_run(recipe):
    small = recipes.scaled_down(recipe)
    model, record = course_runs.run(small, DATA / "runs" / small.name, DATA, device=device, progress=False)
    first, last = record["history"][0], record["history"][-1]
    assert last["train_loss"] < first["train_loss"], f"{small.name}: the training loss did not fall"
    assert record["test_acc"] > 0.15, f"{small.name}: {record['test_acc']:.1%} is near chance (10%)"
    return model, record


trained = {}
for recipe in (TINTN, IMPROVED):
    if env.is_smoke():
        small_run = scaled_down_run(recipe)
        if course_runs.shipped(recipe.name) is not None:
            trained[recipe.name] = course_runs.shipped(recipe.name)
        else:
            trained[recipe.name + " (SCALED-DOWN SMOKE RUN)"] = small_run
    elif RETRAIN or course_runs.shipped(recipe.name) is not None:
        trained[recipe.name] = course_runs.load_or_train(recipe, RETRAIN, DATA, device)
    else:
        print(f"{recipe.name}: no shipped checkpoint; set RETRAIN = True to train it here")
for name, (model, record) in trained.items():
    print(f"{name:<13} {record['params']:,} params, {len(record['history'])} epochs, test {record['test_acc']:.1%}, "
          f"{record['train_seconds'] / 60:.0f} min on {record['hardware']}, data {record['data']}")


# %% [markdown]
# ## What the runs did
#
# The curves come from each run's record. The improved recipe's are measured on its
# validation split; tintn's recipe's on the test set, as its source printed them (no choice
# was made from them: the recipe was fixed in advance). Training curves are dashed.

# %%
fig = plot_history({name: record["history"] for name, (_, record) in trained.items()},
                   title=f"the tiny ViT trained from scratch, {DATASET}", num_classes=10,
                   held_out={name: record["curves_on"] for name, (_, record) in trained.items()})
figures.save(fig, FIGURES / "06_history")
plt.show()

# %%
print(f"{'recipe':<14}{'epochs':>7}{'train acc':>11}{'last curve acc':>16}{'test acc':>10}{'minutes':>9}  hardware")
for name, (model, record) in trained.items():
    last = record["history"][-1]
    print(f"{name:<14}{len(record['history']):>7}{last['train_acc']:>11.1%}{last['test_acc']:>11.1%} ({record['curves_on']})"
          f"{record['test_acc']:>10.1%}{record['train_seconds'] / 60:>9.0f}  {record['hardware']}")
    print(f"{'':<14}reference: {record['reference']}")

# %% [markdown]
# The two runs did not get the same budget: tintn's recipe trains for more epochs, on every
# training image, while the improved one holds a validation split back. Read at the same number
# of training images seen (the smaller of the two budgets), each run's per-epoch curve says how
# far it had got (tintn's recipe's curve is on the test set, the improved one's on validation):

# %%
budget = min(len(record["history"]) * record["train_images"] for _, (_, record) in trained.items())
for name, (model, record) in trained.items():
    epoch = min(len(record["history"]), max(1, round(budget / record["train_images"])))  # about `budget` images
    print(f"{name:<13} after {epoch * record['train_images']:>9,} training images (epoch {epoch:>3}): "
          f"{record['history'][epoch - 1]['test_acc']:.1%} ({record['curves_on']})")

# %%
for name, (model, record) in trained.items():
    h = record["history"]
    below = sum(e["train_acc"] < e["test_acc"] for e in h)
    peak = max(h, key=lambda e: e["test_acc"])
    print(f"{name}: training accuracy below the {record['curves_on']} accuracy in {below} of {len(h)} epochs; "
          f"{record['curves_on']} accuracy peaks at {peak['test_acc']:.1%} in epoch {peak['epoch']}, "
          f"ends at {h[-1]['test_acc']:.1%}")

# %% [markdown]
# **What this shows.** Each number is one seed: a gap of a point or two between two runs could
# be the luck of the seed (notebook 09 repeats its runs to measure that). Where training
# accuracy sits *below* the held-out accuracy, the training batches are simply harder than the
# clean held-out images (augmentation, label smoothing), so the two curves do not measure the
# same thing. Overfitting shows as a held-out curve that turns down while training accuracy
# keeps rising; a constant learning rate shows as a held-out curve that keeps jittering instead
# of settling.

# %% [markdown]
# ## tintn's recipe against its source
#
# tintn's README reports 75.5 % test accuracy after 100 epochs: a single reported result, on
# torchvision's CIFAR-10. The recipe, the model and the augmentation here are the ones its code
# uses (defined in `course.recipes`; the table near the top shows where they differ from
# the improved recipe). Two things cannot be made the same: the seed, and the copy of the data.
# The goal set for this recipe (README, "Results") was to come within 1.5 points of the source.
# Every shipped run of `tintn`, one per seed, against the cited numbers (the training loss is
# read off tintn's published plot, `assets/metrics.png`, so only roughly):

# %%
SOURCE_TEST_ACC = 0.755     # tintn's README: test accuracy after 100 epochs (cited, not measured here)
SOURCE_TRAIN_LOSS = 0.56    # tintn's assets/metrics.png: training loss at epoch 100, read off the plot (approximate)
tintn_runs = [r for r in (course_runs.record(recipes.run_name(TINTN.name, seed)) for seed in (0, 1, 2)) if r is not None]
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
          f"{int((accs < SOURCE_TEST_ACC - 0.015).sum())} of {len(tintn_runs)} more than 1.5 points below the source")

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
    assert {quality for quality, _, _ in surveys["train"]} == {75}, f"{DATASET} is labelled q75: its files disagree"
else:
    print(f"this data folder holds {DATASET}: CIFAR-10's own pixels, no JPEG loss")

# %% [markdown]
# **What this shows.** At a constant step size of $10^{-2}$ a run ends wherever its last step
# leaves it: the range over the last epochs is the size of that luck, and the spread between
# seeds adds to it. A training loss above the source's says a run fits its training images less
# well, which overfitting would not explain. The copy of the data is the difference no setting
# removes. JPEG splits each image into 8 × 8 blocks and quantises their frequency coefficients,
# the high frequencies most coarsely (many become zero); with 4:2:0 subsampling, where the survey
# prints it, colour is stored at half the resolution each way. Where training and test files
# were compressed alike (the assert above checks it), the two still match, but detail that
# CIFAR-10's own pixels hold is gone from both. How many points that costs is not measured here:
# it takes the same recipe, several seeds each, on CIFAR-10's own pixels and on the JPEG copy.

# %% [markdown]
# ## Where the trained model goes wrong
#
# The confusion matrix shows, for every true class (row), the percentage of its test images the
# model put into each class (column). The pairs it mixes up most are printed below it.

# %%
NAME = next(name for name in trained if name.startswith(IMPROVED.name))
model, record = trained[NAME]
test_loader = course_runs.loaders(recipes.recipe_of(record), DATA, device)["test"]
preds, labels = predict(model.to(device), test_loader, device=device)
assert torch.equal(labels, test_labels)  # the test loader keeps the original order
accuracy = (preds == labels).float().mean().item()
fig = plot_confusion(preds, labels, CIFAR10_CLASSES, title=f"{NAME}: {accuracy:.1%} test accuracy, {DATASET}")
figures.save(fig, FIGURES / "06_confusion")
plt.show()

# %%
K = len(CIFAR10_CLASSES)
counts = torch.bincount(labels * K + preds, minlength=K * K).reshape(K, K)  # (true, predicted)
per_class = counts.diag() / counts.sum(1)
off = counts.clone().fill_diagonal_(0)
top = off.flatten().topk(5)
print("most frequent confusions (true -> predicted, share of the true class's test images):")
for count, flat in zip(top.values.tolist(), top.indices.tolist()):
    t, p = divmod(flat, K)
    print(f"  {CIFAR10_CLASSES[t]:>10} -> {CIFAR10_CLASSES[p]:<10} {count / counts[t].sum():6.1%}")
order = per_class.argsort()
print(f"hardest class: {CIFAR10_CLASSES[order[0]]} ({per_class[order[0]]:.1%} correct); "
      f"easiest: {CIFAR10_CLASSES[order[-1]]} ({per_class[order[-1]]:.1%})")

# %%
# The test images are stored class by class: draw the examples at random so that every class can appear.
wrong = (preds != labels).nonzero().flatten()
wrong = wrong[torch.randperm(len(wrong), generator=torch.Generator().manual_seed(0))[:24]].sort().values
titles = [f"{CIFAR10_CLASSES[labels[i]]}\n→ {CIFAR10_CLASSES[preds[i]]}" for i in wrong.tolist()]
fig = show_images(test_images[wrong], titles, ncols=6, scale=1.4, fontsize=10)
fig.suptitle(f"misclassified test images of {NAME}, true → predicted, {DATASET}", y=1.02)
figures.save(fig, FIGURES / "06_misclassified")
plt.show()
print(f"{len(wrong)} of {int((preds != labels).sum()):,} misclassified test images shown, drawn at random")

# %% [markdown]
# **What this shows.** Read the confusion list against the matrix: the large off-diagonal
# cells are the model's systematic mistakes, and they are between classes that share shapes
# and colours at 32 px. Many misclassified images are hard for a person too at this size. What
# the matrix does not show is *why* the model decides as it does: notebook 07 opens this same
# checkpoint and looks at its attention.

# %% [markdown]
# ## Exercises
#
# 1. **Per-class accuracy two ways.** Compute the accuracy of every class directly from `preds`
#    and `labels`, and check it against the diagonal of the confusion counts.
# 2. **The floor of a smoothed loss.** With label smoothing $\varepsilon$, the loss cannot reach 0
#    even for a perfect model. Compute the smallest possible smoothed cross-entropy for $K = 10$,
#    $\varepsilon = 0.1$ (hint: the best prediction is $p = q$), and check that no logits do better.
# 3. **Flip at test time.** Evaluate the trained model on the test images and on their
#    mirror images, and average the two softmax outputs. Does this "test-time augmentation"
#    change the accuracy, and by how much?
#
# Solutions follow; CI runs them and asserts what they claim.

# %% [markdown]
# ---
# ### Solutions (run by CI)

# %%
# Exercise 1: per-class accuracy from predictions = diagonal / row sums of the confusion counts.
direct = torch.stack([(preds[labels == k] == k).float().mean() for k in range(K)])
assert torch.allclose(direct, per_class)
print("per-class accuracy:", ", ".join(f"{c} {a:.0%}" for c, a in zip(CIFAR10_CLASSES, direct.tolist())))

# %%
# Exercise 2: the smoothed loss is the cross-entropy H(q, p) >= H(q), reached at p = q.
q_best = torch.full((K,), eps / K)
q_best[0] += 1 - eps
floor = -(q_best * q_best.log()).sum().item()
random_logits = torch.randn(1000, K) * 10
losses = F.cross_entropy(random_logits, torch.zeros(1000, dtype=torch.long), label_smoothing=eps, reduction="none")
at_q = F.cross_entropy(q_best.log()[None], torch.zeros(1, dtype=torch.long), label_smoothing=eps).item()
print(f"smallest smoothed loss (K={K}, eps={eps}): {floor:.4f}; at p = q: {at_q:.4f}; "
      f"best of 1,000 random logits: {losses.min():.4f}")
assert abs(at_q - floor) < 1e-5 and losses.min() >= floor - 1e-6

# %%
# Exercise 3: average the softmax of each test image and its mirror image.
@torch.inference_mode()
def flip_tta_accuracy(model, loader) -> tuple[float, float]:
    model.eval()
    plain = tta = n = 0
    for x, y in loader:
        p = model(x).softmax(-1)
        p_flip = model(x.flip(-1)).softmax(-1)  # flip the width axis: the mirror image
        plain += (p.argmax(-1) == y).sum().item()
        tta += ((p + p_flip).argmax(-1) == y).sum().item()
        n += len(y)
    return plain / n, tta / n


plain_acc, tta_acc = flip_tta_accuracy(model, test_loader)
print(f"{NAME}: test accuracy {plain_acc:.2%}, with flip averaging {tta_acc:.2%} "
      f"({100 * (tta_acc - plain_acc):+.2f} points)")
assert abs(plain_acc - accuracy) < 1e-6

# %%
print(f"whole notebook: {time.perf_counter() - notebook_start:.0f} s on {env.hardware()}")
