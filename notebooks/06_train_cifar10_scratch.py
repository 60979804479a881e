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
# 4 × 4 patches; its parameter count is printed below), trains it on a CPU with a plain recipe
# (the one tintn's [vision-transformer-from-scratch](https://github.com/tintn/vision-transformer-from-scratch)
# uses), then with an improved recipe on the same model, looks at what the trained model
# still gets wrong, and last climbs a ladder of model changes that suit small data, beside a
# small CNN. How the plain recipe's result compares with the number tintn published is
# reproduction work, in the appendix: [notebook 13](13_appendix_reproductions.ipynb).
#
# **What you will learn**
# - the training step of a ViT, written out: AdamW, the learning-rate schedule, label
#   smoothing and gradient clipping;
# - a recipe with four changes for a small ViT: warmup then cosine decay, label smoothing,
#   weight decay that spares norms and embeddings, and pad-and-crop + flip (compared as a whole,
#   not one change at a time: the exercises do that);
# - why a recipe is chosen on a validation split carved from the training images, and the test
#   set is read once, at the end;
# - how to read learning curves, a confusion matrix and the misclassified images;
# - what a ViT needs on small data: a convolutional tokenizer, sequence pooling and fixed
#   sin-cos positions, one change per run at an equal budget, against a CNN of similar size.
#
# **Trained models come with the repository.** Training these models takes an hour or more on
# a laptop CPU, so the repository includes their weights (`data/checkpoints/`, about 0.5 MB
# each) with a
# JSON record of each run: recipe, per-epoch history, test accuracy, wall time, hardware and the
# git commit it ran from. By default this notebook loads them. Set `RETRAIN = True` below to
# train every recipe here instead, with exactly the code that made them (`course.recipes`,
# the same code as the command `python -m course.recipes run <name> --out <folder>`). Each
# model's line below says how long it took where it was made. A GPU does each run in minutes.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import setup
here = setup()  # prints one line: profile, device, data folder

# %%
RETRAIN = False  # True: train both recipes here instead of loading the saved checkpoints

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course import figures, recipes
from course import runs as course_runs
from vit_core import ViT
from vit_core.data import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, load_tensors, source_name
from vit_core.plots import plot_confusion, plot_history, show_images
from vit_core.train import evaluate, lr_factor, make_optimizer, predict

device, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above
TINTN = recipes.RECIPES["tintn"]          # the plain recipe
IMPROVED = recipes.RECIPES["improved-cpu"]

# %% [markdown]
# ## The two recipes, side by side
#
# Both recipes are defined once, in `course.recipes` (`course.runs` runs them), and
# everything below reads them from there. The table lists every setting in which they differ.
#
# **The plain recipe** (`tintn`) is the one tintn's code runs: AdamW at a constant step size
# of $10^{-2}$, weight decay on every tensor, no warmup, no gradient clipping, random flips and
# resized crops, pixels scaled to $[-1, 1]$ (`normalize = half`: mean and std 0.5 per
# channel), 100 epochs on all 50,000 training images. Its model
# has the same shape, but follows tintn's code in three small details (the `model.` rows: no
# LayerNorm before the head, a plain normal initialisation, the tanh approximation of GELU);
# notebook 13 says why they are kept. **The improved recipe** (`improved-cpu`) changes the
# training, one piece at a time in the next sections.

# %%
print(f"{'setting':<24}{TINTN.name:>14}{IMPROVED.name:>16}")
for name, va, vb in recipes.differences(TINTN, IMPROVED):  # every setting in which they differ
    print(f"{name:<24}{str(va):>14}{str(vb):>16}")

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
# flip + resized crop of the plain recipe goes through `torchvision.transforms.v2` image by image.)

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
# time, a new draw every epoch. Both keep the label true.
#
# <details><summary>Caveats</summary>
#
# The picture does not show how much accuracy the augmentation buys: the recipes differ in
# several settings at once, so the comparison below measures the recipe, not each piece
# (exercise 4 tries stronger augmentations one at a time).
#
# </details>

# %% [markdown]
# **Warmup, then cosine decay.** Over $S$ optimiser steps with $S_w$ warmup steps the step size is
# $$\eta(t) = \eta_{\max}\,\frac{t+1}{S_w} \quad (t < S_w), \qquad
# \eta(t) = \frac{\eta_{\max}}{2}\left(1 + \cos\frac{\pi\,(t - S_w)}{S - S_w}\right) \quad (t \ge S_w).$$
# ($S$ for steps: $T$ is the number of tokens in this series.)
# Early on, Adam's second-moment estimates (AdamW, below) are still noisy and a full-size step
# can wreck the
# fresh attention layers; at the end, small steps settle into a minimum. The plain recipe keeps
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
# decays it smoothly towards zero by its last step; the plain recipe's step size never changes.
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
# **AdamW, and weight decay that spares norms and embeddings.** Adam scales each weight's step
# by a running estimate of its gradient's size, $\hat m / (\sqrt{\hat v} + \epsilon)$, which
# suits a Transformer whose layers see gradients of very different sizes. Adam's
# `weight_decay` adds $\lambda\theta$ to the gradient, so the decay is divided by
# $\sqrt{\hat v}$ too and weights with large gradients are hardly decayed. AdamW (Loshchilov &
# Hutter, 2019) decouples the two: it shrinks every decayed weight by $\eta\lambda$ per step,
# apart from the adaptive step,
# $\theta \leftarrow \theta - \eta\,\big(\hat m / (\sqrt{\hat v} + \epsilon) + \lambda\,\theta\big)$.
# Pulling LayerNorm gains, biases, the CLS token and the position embeddings toward zero only
# removes information, so the improved recipe decays matrices alone (`decay_all=False`); the
# plain recipe decays everything.

# %%
groups = make_optimizer(ViT(IMPROVED.model), IMPROVED.train, torch.device("cpu")).param_groups
decayed, spared = (sum(p.numel() for p in g["params"]) for g in groups)
print(f"{IMPROVED.name}: weight decay {IMPROVED.train.weight_decay} on {decayed:,} weights, "
      f"0 on {spared:,} (norms, biases, CLS, positions)")
assert spared > 0 and groups[1]["weight_decay"] == 0.0

# %% [markdown]
# ## One training step, by hand
#
# `vit_core.train.fit` trains every recipe of the series. Without its bookkeeping (mixed
# precision, checkpoints, logs), each of its steps does what `train_steps` below does: set this
# step's learning rate from the schedule, compute the label-smoothed loss on an augmented batch,
# backpropagate, **clip the gradient** (rescale it when its global norm exceeds a threshold, so
# that one bad batch cannot throw the fresh attention layers far off), and let AdamW update the
# weights. A few steps of the improved recipe on a fresh model:

# %%
def train_steps(model, loader, config, steps: int) -> list[float]:
    """`steps` optimiser steps of `config` (a TrainConfig) on `loader`'s batches; each step's loss."""
    model.to(device).train()
    optimizer = make_optimizer(model, config, device)  # AdamW; decay on matrices only
    warmup = round(steps * config.warmup_epochs / config.epochs)  # the recipe's share of warmup
    losses = []
    for step, (x, y) in zip(range(steps), loader):  # x: (B, 3, 32, 32) augmented, normalised
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_factor(step, steps, warmup, config.schedule)
        loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return losses


torch.manual_seed(0)
losses = train_steps(ViT(IMPROVED.model), loaders["train"], IMPROVED.train, steps=12)
print("loss per step:", " ".join(f"{loss:.2f}" for loss in losses))
assert sum(losses[-5:]) < sum(losses[:5]), "the loss should fall within a few steps"

# %% [markdown]
# ## Trained models
#
# A full run is `fit` doing that for tens of epochs. This cell loads the saved checkpoints,
# or trains a recipe here when `RETRAIN = True` (resumable: run the cell again). In the quick
# test run of this notebook, each recipe trains for a few steps only, to show that the loop
# runs; a recipe without a saved checkpoint is then replaced by its few-step run, and its line
# says so. Each line names the data (a JPEG copy of CIFAR-10 at quality 75, when the original
# could not be downloaded) and the machine; "1 torch thread (epochs 1-15), then 2" means the
# run used one CPU thread for its first 15 epochs and two after that.

# %%
trained = {recipe.name: course_runs.get(recipe, retrain=RETRAIN, data_root=DATA, device=device)
           for recipe in (TINTN, IMPROVED)}
for name, (model, record) in trained.items():
    print(f"{course_runs.describe(record)}; {record['params']:,} params")


# %% [markdown]
# ## What the runs did
#
# The curves come from each run's record. The improved recipe's are measured on its
# validation split; the plain recipe's on the test set, as its source printed them (no choice
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

# %% [markdown]
# The two runs did not get the same budget: the plain recipe trains for more epochs, on every
# training image, while the improved one holds a validation split back. Read at the same number
# of training images seen (the smaller of the two budgets), each run's per-epoch curve says how
# far it had got. The two curves are on different images (the plain recipe's on the test set, the
# improved one's on its validation split), so this compares like with like only roughly:

# %%
budget = min(len(record["history"]) * record["train_images"] for _, (_, record) in trained.items())
at_budget = {}
for name, (model, record) in trained.items():
    epoch = min(len(record["history"]), max(1, round(budget / record["train_images"])))  # about `budget` images
    at_budget[name] = record["history"][epoch - 1]["test_acc"]
    print(f"{name:<13} after {epoch * record['train_images']:>9,} training images (epoch {epoch:>3}): "
          f"{at_budget[name]:.1%} ({record['curves_on']})")
lead_at_end = trained[IMPROVED.name][1]["test_acc"] - trained[TINTN.name][1]["test_acc"]
print(f"the improved recipe's lead: {100 * lead_at_end:+.1f} points of test accuracy at the end; "
      f"{100 * (at_budget[IMPROVED.name] - at_budget[TINTN.name]):+.1f} points at equal images "
      f"({IMPROVED.name}'s validation curve against {TINTN.name}'s test curve)")

# %%
for name, (model, record) in trained.items():
    h = record["history"]
    below = sum(e["train_acc"] < e["test_acc"] for e in h)
    peak = max(h, key=lambda e: e["test_acc"])
    last = [e["test_acc"] for e in h[-10:]]
    print(f"{name}: training accuracy below the {record['curves_on']} accuracy in {below} of {len(h)} epochs; "
          f"{record['curves_on']} accuracy peaks at {peak['test_acc']:.1%} in epoch {peak['epoch']}, "
          f"ends at {h[-1]['test_acc']:.1%}, ranges over {min(last):.1%}-{max(last):.1%} "
          f"in the last {len(last)} epochs")

# %% [markdown]
# **What this shows.** The improved recipe ends ahead of the plain one on the test set after
# fewer epochs. At an equal number of images seen its lead looks larger (its validation curve
# against the plain recipe's test curve, so roughly): it learns faster early, and the plain
# recipe's longer budget narrows the gap. Its held-out curve settles as the
# step size decays, while the plain recipe's, at a constant step size, keeps jittering to the
# end, so its last epoch is not its best (the peaks and ranges printed above). In some epochs of both
# runs training accuracy sits *below* held-out accuracy: the training batches are augmented
# (and, for the improved recipe, scored against smoothed labels), so they are harder than the
# clean held-out images.
#
# <details><summary>Caveats</summary>
#
# Each number is one seed: a gap of a point or two between two runs could be the luck of the
# seed (notebook 09 repeats its runs to measure that; notebook 13 does it for the plain
# recipe). The recipes differ in several settings at once, so the comparison measures the
# recipe, not each piece. The budgets differ: the plain recipe trains for more epochs, on every
# training image, while the improved one holds a validation split back. The plain recipe's
# curves are on the test set, as its source printed them; nothing was chosen from them (the
# recipe was fixed in advance). The data is a JPEG copy of CIFAR-10 (the data line above);
# notebook 13 says what that copy lost. Training times depend on the machine and its threads.
#
# </details>

# %% [markdown]
# ## Where the trained model goes wrong
#
# The confusion matrix shows, for every true class (row), the percentage of its test images the
# model put into each class (column). The pairs it mixes up most are printed below it.

# %%
NAME = IMPROVED.name
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
# **What this shows.** The mistakes are not spread evenly: cat and dog, confused both ways,
# are the model's largest mistakes, and the other frequent pairs also share shapes and colours
# at 32 px (animals with animals, cars with trucks). Many misclassified images are hard for a
# person too at this size.
#
# <details><summary>Caveats</summary>
#
# The matrix does not show *why* the model decides as it does: notebook 07 opens this same
# checkpoint and looks at its attention. The misclassified images are a random draw, not the
# most typical mistakes.
#
# </details>

# %% [markdown]
# ## What a ViT needs on small data: the ladder
#
# A ViT has to learn from its training images what a convolutional network is built with:
# that neighbouring pixels belong together, and that a pattern means the same thing wherever
# it appears. From CIFAR-10's training images alone that costs accuracy. The **ladder** asks
# which small changes give those priors back. Each rung adds one change to the rung below and
# trains with the same recipe for the same number of epochs (the improved recipe, shortened); a
# ResNet of similar size trains beside them on the same budget, and a final run trains rung 3's
# model for longer, toward the series' CPU goal. The runs are recipes of
# `course.recipes` (`ladder-*`), shipped as records and weights like the two above; a run not
# shipped yet is skipped with a line that says so.

# %%
from course import ladder, max_diff
from vit_core.layers import sincos_pos_embed

LADDER = [recipes.RECIPES[name] for name in ladder.RUNGS]  # rungs 1-4
CNN, FINAL = recipes.RECIPES[ladder.CNN], recipes.RECIPES[ladder.FINAL]
print(f"{LADDER[0].name:<19} {LADDER[0].about.split(': ', 1)[1].split(';')[0]}")
for lower, upper in (*zip(LADDER, LADDER[1:]), (LADDER[2], FINAL)):  # what each run changes
    change = ", ".join(f"{key} {a} -> {b}" for key, a, b in recipes.differences(lower, upper))
    print(f"{upper.name:<19} {lower.name} with {change}")
print(f"{CNN.name:<19} {CNN.about.split(': ', 1)[1].split(';')[0]}")
assert all(key.startswith("model.") for a, b in zip(LADDER, LADDER[1:])
           for key, *_ in recipes.differences(a, b))  # one rung to the next: the model alone
assert all(r.train == CNN.train and r.batch_size == CNN.batch_size for r in LADDER)
print(f"rungs 1-4 and {CNN.name}: the same training, {CNN.train.epochs} epochs of "
      f"batch {CNN.batch_size}, learning rate {CNN.train.lr}")


def ladder_model(recipe):
    """The shipped model of a ladder run, or a fresh one (same shapes) if none is shipped yet."""
    found = course_runs.shipped(recipe.name)
    print(f"{recipe.name}: {'shipped weights' if found else 'fresh weights (not shipped yet)'}")
    return (found[0] if found else course_runs.build_model(recipe)).to(device).eval()


images = next(iter(test_loader))[0][:8]  # (8, 3, 32, 32): a few normalised test images

# %% [markdown]
# **A convolutional tokenizer.** The patch embedding maps each $4 \times 4$ patch to a token
# with one matrix, $z_{ij} = W \operatorname{vec}(x_{ij}) + b$: a token never sees a pixel of
# the patch beside it. CCT (Hassani et al. 2021, *Escaping the Big Data Paradigm with Compact
# Transformers*, [code](https://github.com/SHI-Labs/Compact-Transformers)) makes the tokens with
# small convolutions instead. Each layer is a $3 \times 3$ convolution (written $*$), a ReLU and a
# $3 \times 3$ max-pool of stride 2, so $\log_2 p$ layers give the same grid as $p \times p$
# patches:
# $$z = \operatorname{maxpool}\big(\operatorname{ReLU}(W_2 * \operatorname{maxpool}(
#   \operatorname{ReLU}(W_1 * x)))\big).$$
# Each token now depends on a $13 \times 13$ window of pixels, and neighbouring windows overlap:
# locality, built in. Written out on the weights of rung 2:

# %%
conv_vit = ladder_model(LADDER[1])
conv_weights = [c.weight for c in conv_vit.patch_embed.convs[::3]]  # (d, 3, 3, 3), (d, d, 3, 3)


def conv_tokens(images, weights):
    x = images  # (B, 3, 32, 32)
    for w in weights:  # one layer per halving of the grid: log2(patch_size) layers
        x = F.relu(F.conv2d(x, w, padding=1))  # (B, d, H, W): 3 x 3 convolution, no bias
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B, d, H/2, W/2)
    return x.flatten(2).transpose(1, 2)  # (B, grid * grid, d): one token per grid cell


with torch.no_grad():
    tokens = conv_tokens(images, conv_weights)
    gap = max_diff(tokens, conv_vit.patch_embed(images))
patch_weights = sum(p.numel() for p in ViT(LADDER[0].model).patch_embed.parameters())
print(f"conv tokenizer by hand: tokens {tuple(tokens.shape)}, max |difference| from vit_core's "
      f"{gap:.1e}; {sum(w.numel() for w in conv_weights):,} weights against the patch "
      f"embedding's {patch_weights:,}")
assert tokens.shape == (8, LADDER[1].model.num_patches, LADDER[1].model.dim) and gap < 1e-4

# %% [markdown]
# **Sequence pooling.** The head of the tiny ViT reads one token, CLS, which gathers the image
# through attention. CCT drops the CLS token and lets the head read a learned weighted mean of
# all $N$ output tokens $X \in \mathbb{R}^{N \times d}$: one score per token from a learned
# vector $g \in \mathbb{R}^{d}$ and bias $c$, a softmax over the tokens, then the mean,
# $$w = \operatorname{softmax}(X g + c) \in \mathbb{R}^{N}, \qquad
#   z = w^\top X \in \mathbb{R}^{d}.$$
# That is $d + 1$ parameters; mean pooling is the case of equal scores. Every token's output now
# reaches the loss, so the last block runs on all of them (`cls_only_last_block` is off).
# On rung 3's weights:

# %%
seq_vit = ladder_model(LADDER[2])
with torch.no_grad():
    tokens = seq_vit.forward_features(images)  # (B, N, d): normed tokens, no CLS token
    score = seq_vit.seq_pool.score  # Linear(d, 1): g and c
    weights = (tokens @ score.weight.T + score.bias).softmax(dim=1)  # (B, N, 1): sums to 1 over N
    pooled = (weights * tokens).sum(dim=1)  # (B, d): what the head reads
    gap = max_diff(pooled, seq_vit.pool(tokens))
top = weights.amax(dim=1).flatten()  # (B,): each image's largest token weight
print(f"sequence pooling by hand: {tuple(tokens.shape)} -> {tuple(pooled.shape)}, "
      f"max |difference| {gap:.1e}; largest token weight per image {top.min():.3f}-{top.max():.3f} "
      f"(equal weights: {1 / tokens.shape[1]:.3f})")
assert gap < 1e-5 and torch.allclose(weights.sum(dim=1), torch.ones_like(weights[:, 0]))

# %% [markdown]
# **Fixed 2-D sin-cos positions.** Beyer, Zhai and Kolesnikov (2022, *Better plain ViT
# baselines for ImageNet-1k*, [code](https://github.com/google-research/big_vision)) replace the
# learned position table with notebook 02's fixed one: for the patch in row $r$, column $c$,
# sines and cosines of $r\,\omega_k$ and $c\,\omega_k$ at $d/4$ frequencies $\omega_k$, so that
# $p_{r,c} \cdot p_{r',c'} = \sum_k \cos((r - r')\,\omega_k) + \cos((c - c')\,\omega_k)$ depends
# only on the offset. Nothing to learn, and the 2-D layout is given rather than found. Rung 4:

# %%
sincos_vit = ladder_model(LADDER[3])
table = sincos_pos_embed(LADDER[3].model.grid_size, LADDER[3].model.dim).to(device)  # (N, d)
trainable = {name: sum(p.numel() for p in m.parameters()) for name, m in
             ((LADDER[2].name, seq_vit), (LADDER[3].name, sincos_vit))}
print(f"sin-cos positions: a fixed buffer {tuple(sincos_vit.pos_embed.shape)}, max |difference| "
      f"from the table {max_diff(sincos_vit.pos_embed[0], table):.1e}; trainable parameters "
      + " -> ".join(f"{n:,} ({name})" for name, n in trainable.items()))
assert max_diff(sincos_vit.pos_embed[0], table) == 0
assert "pos_embed" not in dict(sincos_vit.named_parameters())  # a buffer: saved, never trained

# %% [markdown]
# **The CNN beside the ladder.** A convolution applies the same small filter at every position,
# $y_{ij} = \sum_{|a|, |b| \le 1} W_{ab}\, x_{i+a,\, j+b}$. Two priors follow: *locality* (an
# output sees a $3 \times 3$ neighbourhood; depth widens it) and *translation equivariance*
# (shift the image, and the features shift with it, because $W$ is the same everywhere). A ViT
# has neither: any token attends to any other from the first block, and a patch embedding
# commutes only with shifts by whole patches. The ResNet (He et al. 2016) in `course.cnn` stacks
# torchvision's `BasicBlock`, $y = \operatorname{ReLU}(x + F(x))$ with $F$ two $3 \times 3$
# convolutions with BatchNorm, in three stages whose width doubles as the map halves, then
# averages the map and applies a linear head. Its first layer, on shifted images:

# %%
cnn = ladder_model(CNN)
conv = cnn.stem[0]  # the first layer: 16 filters of 3 x 3 x 3, the same at every position
with torch.no_grad():
    moved = conv(images.roll(1, dims=-1))  # features of the images moved one pixel right
    shifted = conv(images).roll(1, dims=-1)  # features of the images, then moved one pixel right
    gap = max_diff(moved[..., 2:-2], shifted[..., 2:-2])  # away from the wrapped-round edge
print(f"move the image, and the CNN's features move with it: max |difference| {gap:.1e}; "
      f"{sum(p.numel() for p in cnn.parameters()):,} parameters against "
      f"{sum(p.numel() for p in conv_vit.parameters()):,} for {LADDER[1].name}")
assert gap < 1e-5

# %% [markdown]
# ### The runs
#
# Each rung's record, as shipped: test accuracy measured once, on a single view and with flip
# test-time augmentation (the image and its mirror averaged, exercise 4); wall time; and the
# speed of the fastest epoch, the one least slowed by other work on the machine.

# %%
ladder_records = {name: course_runs.record(name)
                  for name in (*ladder.RUNGS, ladder.CNN, ladder.FINAL)}
for name in [name for name, rec in ladder_records.items() if rec is None]:
    print(f"{name}: no record yet, skipped "
          f"(train it: python -m course.recipes run {name} --out DIR)")
ladder_rows = {name: ladder.row(rec) for name, rec in ladder_records.items() if rec is not None}
print(f"{'run':<20}{'params':>9}{'epochs':>7}{'test':>8}{'flip TTA':>9}{'minutes':>8}"
      f"{'img/s':>7}  hardware")
for r in ladder_rows.values():
    tta = f"{r.tta:.1%}" if r.tta is not None else "-"
    print(f"{r.name:<20}{r.params:>9,}{r.epochs:>7}{r.test_acc:>8.1%}{tta:>9}{r.minutes:>8.0f}"
          f"{r.img_per_s:>7,.0f}  {r.hardware}")

# %%
fig = ladder.plot(ladder_rows, title=f"the small-data ladder, {DATASET}")
figures.save(fig, FIGURES / "06_ladder")
plt.show()

# %%
improved_record = trained[IMPROVED.name][1]  # the tiny ViT's long run, from the sections above
baseline = None if course_runs.is_stand_in(improved_record) else ladder.row(improved_record)
for line in ladder.takeaways(ladder_rows, baseline):
    print("-", line)

# %% [markdown]
# **What this shows.** At equal epochs the small ResNet beats every ViT rung: locality that the
# architecture has for free is worth more on CIFAR-10's training set than anything the ViT learns
# in the same number of steps. The convolutional tokenizer, which gives the ViT's tokens that
# locality, buys the largest gain on the ladder; sequence pooling and fixed sin-cos positions
# each move accuracy by less than one seed can resolve at this short budget. Trained for
# longer, the ViT with a conv tokenizer and sequence pooling passes the series' goal of 80%
# within 90 CPU minutes, which the plain tiny ViT did not reach.
#
# <details><summary>Caveats</summary>
#
# Each run is one seed: a gap of a point or two could be the seed's luck (notebook 09 measures
# that spread for its runs). Equal epochs are not equal time: the conv tokenizer and the CNN
# train fewer images a second than the tiny ViT (the `img/s` column), so at equal minutes the
# order could change. The minutes are the recorded wall times on a shared 2-core machine,
# longer wherever other jobs ran; the fastest epoch's `img/s` measures speed better. Each run
# chose nothing on the test set (curves on its validation split). The data is the JPEG copy.
#
# </details>

# %% [markdown]
# ## Exercises
#
# Exercises 2-4 are small experiments: one change to the model or the data at a time, the rest
# of the improved recipe fixed. A fair answer trains each variant for the same number of epochs
# (ten each, say; a line in the solutions prints what one epoch cost where the saved model was
# trained). The solutions run only a few steps of each, so that they run anywhere: they show the
# code, not the answer.
#
# 1. **The floor of a smoothed loss.** With label smoothing $\varepsilon$, the loss cannot
#    reach 0 even for a perfect model. Compute the smallest possible smoothed cross-entropy for
#    $K = 10$, $\varepsilon = 0.1$ (hint: the best prediction is $p = q$), and check that no
#    logits do better.
# 2. **Patch size against accuracy.** Train the tiny ViT with 2 × 2, 4 × 4 and 8 × 8 patches
#    (`replace(IMPROVED.model, patch_size=p)`) for the same number of epochs. How many tokens
#    does each see, how long does a step take, and which reaches the best validation accuracy?
#    Why does the smallest patch cost so much more time per step?
# 3. **Past the ladder.** The ladder measured a conv tokenizer, sequence pooling and sin-cos
#    positions. Two questions it leaves open, each against rung 3's model (`LADDER[2].model`)
#    at equal epochs: is sequence pooling's learned weighting worth more than a plain mean of
#    the tokens (`pool="mean"`)? And does the conv tokenizer gain from a finer grid
#    (`patch_size=2`: one conv layer, four times the tokens)? What does each cost per step?
# 4. **DeiT-style augmentation, and augmentation at test time.** DeiT trains ViTs on ImageNet
#    alone with strong augmentation: RandAugment or TrivialAugment on every image, MixUp or
#    CutMix on every batch. Train with `replace(IMPROVED, augment="randaugment")` (or
#    `"trivialaugment"`) and with `mix=True` (MixUp/CutMix: soft targets), and compare. Then
#    augment at test time: average the trained model's outputs on each test image and its mirror
#    image (by hand; `vit_core`'s `evaluate(..., flip=True)` does the same). Does the accuracy
#    change, and by how much?
#
# Solutions follow; CI runs them and asserts what they claim.

# %% [markdown]
# ---
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: the smoothed loss is the cross-entropy H(q, p) >= H(q), reached at p = q.
K = len(CIFAR10_CLASSES)
q_best = torch.full((K,), eps / K)
q_best[0] += 1 - eps
floor = -(q_best * q_best.log()).sum().item()
random_logits = torch.randn(1000, K) * 10
losses = F.cross_entropy(random_logits, torch.zeros(1000, dtype=torch.long), label_smoothing=eps, reduction="none")
at_q = F.cross_entropy(q_best.log()[None], torch.zeros(1, dtype=torch.long), label_smoothing=eps).item()
print(f"smallest smoothed loss (K={K}, eps={eps}): {floor:.4f}; at p = q: {at_q:.4f}; "
      f"best of 1,000 random logits: {losses.min():.4f}")
assert abs(at_q - floor) < 1e-5 and losses.min() >= floor - 1e-6

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercises 2-4 share this: a few steps of a variant of the improved recipe, scored on a
# class-balanced part of the validation split (the split is stored class by class).
import functools
import time

from vit_core.data import TensorLoader, subset

STEPS = 5  # for an answer: 10 epochs' worth (len(loaders["train"]) steps an epoch at batch 256)


@functools.cache
def exercise_loaders(augment: str = "crop_flip", mix: bool = False) -> dict:
    recipe = replace(IMPROVED, augment=augment, mix=mix, batch_size=64)  # small batches, quick steps
    return course_runs.loaders(recipe, DATA, device)


@functools.cache
def balanced_val(per_class: int = 100) -> TensorLoader:
    val = exercise_loaders()["val"]
    per_class = min(per_class, int(torch.bincount(val.labels.cpu()).min()))
    images, labels = subset(val.images.cpu(), val.labels.cpu(), per_class=per_class)
    mean, std = recipes.NORMALIZE[IMPROVED.normalize]
    return TensorLoader(images, labels, 500, train=False, mean=mean, std=std, device=device)


def short_run(model_config, augment: str = "crop_flip", mix: bool = False, steps=STEPS) -> dict:
    data = exercise_loaders(augment, mix)
    torch.manual_seed(0)
    model = ViT(model_config)
    start = time.perf_counter()
    losses = train_steps(model, data["train"], IMPROVED.train, steps)
    seconds = (time.perf_counter() - start) / steps
    val = evaluate(model, balanced_val())
    return {"tokens": model.config.num_patches, "params": sum(p.numel() for p in model.parameters()),
            "s_per_step": seconds, "loss": losses[-1], "val_acc": val["acc"],
            "targets": next(iter(data["train"]))[1]}  # (B,) labels, or (B, 10) soft targets


minutes_per_epoch = record["train_seconds"] / 60 / len(record["history"])
print(f"one epoch of {IMPROVED.name} took {minutes_per_epoch:.1f} min "
      f"on {record['hardware']}")

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: patch size. Tokens grow as (32 / p)^2, attention's cost as its square.
patch_runs = {p: short_run(replace(IMPROVED.model, patch_size=p)) for p in (2, 4, 8)}
for p, r in patch_runs.items():
    print(f"{p} x {p} patches: {r['tokens']:>3} tokens, {r['params']:>7,} params, "
          f"{r['s_per_step']:.2f} s/step, "
          f"val {r['val_acc']:.1%} after {STEPS} steps (not a result)")
assert all(r["tokens"] == (32 // p) ** 2 for p, r in patch_runs.items())
if device.type == "cpu":  # on a GPU a step this small is dominated by kernel launches
    assert patch_runs[2]["s_per_step"] > patch_runs[8]["s_per_step"]  # 256 tokens against 16

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: two changes to rung 3's model (conv tokenizer + sequence pooling), one at a time.
rung3 = LADDER[2].model
variants = {"rung 3": {}, "pool='mean'": dict(pool="mean"), "patch_size=2": dict(patch_size=2)}
option_runs = {name: short_run(replace(rung3, **change)) for name, change in variants.items()}
for name, r in option_runs.items():
    print(f"{name:<13} {r['tokens']:>3} tokens, {r['params']:>7,} params, "
          f"{r['s_per_step']:.2f} s/step, loss {r['loss']:.2f}, "
          f"val {r['val_acc']:.1%} after {STEPS} steps (not a result)")
assert option_runs["patch_size=2"]["tokens"] == 4 * option_runs["rung 3"]["tokens"]
no_score = option_runs["rung 3"]["params"] - option_runs["pool='mean'"]["params"]
assert no_score == rung3.dim + 1  # mean pooling has no g, c to learn
assert all(torch.isfinite(torch.tensor(r["loss"])) for r in option_runs.values())

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 4a: DeiT-style augmentation. MixUp/CutMix turns the labels into soft targets (B, 10).
augmentations = {"crop + flip": {}, "randaugment": dict(augment="randaugment"),
                 "trivialaugment": dict(augment="trivialaugment"), "MixUp/CutMix": dict(mix=True)}
augment_runs = {name: short_run(IMPROVED.model, **change) for name, change in augmentations.items()}
for name, r in augment_runs.items():
    print(f"{name:<15} targets {tuple(r['targets'].shape)}, loss {r['loss']:.2f}, "
          f"val {r['val_acc']:.1%} after {STEPS} steps")
assert augment_runs["MixUp/CutMix"]["targets"].shape == (64, 10)  # soft targets: a mix of two labels
assert augment_runs["crop + flip"]["targets"].shape == (64,)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 4b: average the logits of each test image and its mirror image (the trained model).
@torch.inference_mode()
def flip_tta_accuracy(model, loader) -> tuple[float, float]:
    model.eval()
    plain = tta = n = 0
    for x, y in loader:
        logits = model(x)
        logits_flip = model(x.flip(-1))  # flip the width axis: the mirror image
        plain += (logits.argmax(-1) == y).sum().item()
        tta += ((logits + logits_flip).argmax(-1) == y).sum().item()
        n += len(y)
    return plain / n, tta / n


plain_acc, tta_acc = flip_tta_accuracy(model, test_loader)
print(f"{NAME}: test accuracy {plain_acc:.2%}, with flip averaging {tta_acc:.2%} "
      f"({100 * (tta_acc - plain_acc):+.2f} points)")
assert abs(plain_acc - accuracy) < 1e-6  # the same model, the same test set as the confusion matrix
