# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/03_self_attention.ipynb)
#
# # 03 · Self-attention, from matrix products to `vit_core.Attention`
#
# Self-attention is the one place in a Transformer where tokens talk to each other. Everything
# else (LayerNorm, the MLP) works on one token at a time. In this notebook we build it from
# three matrix products and a softmax, understand the $\sqrt{d}$ in it by measuring what goes
# wrong without it, split it into heads, prove four implementations equal, look at what a
# trained head attends to in a real image, and measure its famous quadratic cost.
#
# **What you will learn**
# - scaled dot-product attention, derived and written with plain matmuls;
# - why scores are divided by $\sqrt{d}$: the variance of $q \cdot k$ and softmax saturation, measured;
# - multi-head attention: splitting and merging heads with einops;
# - that a hand-written version, a fused-QKV version, `F.scaled_dot_product_attention` and
#   `vit_core.Attention` compute the same thing;
# - how to read one head's attention weights on an image;
# - how time and memory grow with sequence length $N$ (quadratically), measured.

# %%
# Setup: on Colab, clone the repository and install it (vit_core and the course harness);
# locally `pip install -r requirements.txt` has done that already.
import subprocess, sys
from pathlib import Path
if "google.colab" in sys.modules and not Path("vit-notebooks").exists():
    subprocess.run("git clone -q --depth 1 https://github.com/vit-notebooks/vit-notebooks && "
                   "pip install -q -e vit-notebooks timm", shell=True, check=True)
    import site
    site.main()  # let the running kernel see the fresh editable install
from course import env
env.describe()  # profile and hardware of this run, printed first

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from vit_core import Attention, ViT, ViTConfig, max_diff
from vit_core.attention_maps import cls_attention
from vit_core.data import CIFAR10_CLASSES, TensorLoader, load_tensors, source_name, subset
from vit_core.plots import save_figure
from vit_core.train import TrainConfig, fit

torch.manual_seed(0)
DEVICE = env.get_device()
DATA = env.data_dir()                 # datasets, decode caches and runs: $VIT_DATA, else data/
DOWNLOAD = env.downloads_allowed()    # torchvision may download missing data (full profile only)
FIGURES = env.figures_dir()           # where the figures of the README are written

# Hyper-parameters of this notebook, in one place.
ATOL = RTOL = 1e-5       # float32 tolerance: the same sums in a different order differ by ~1e-7
SAMPLES = 20_000         # random (q, k) pairs per dimension in the variance experiment
KEYS = 64                # keys per softmax row in the saturation experiment
DIMS = [4, 16, 64, 256, 1024]  # head dimensions d to test
# The brief training run is notebook 02's: same data, model and recipe, same folder. Whichever
# notebook runs first trains it; the other finds the finished checkpoint and loads it.
TRAIN_PER_CLASS = env.pick(full=None, smoke=300)   # training images per class (None: all 5,000)
TEST_PER_CLASS = env.pick(full=None, smoke=100)    # test images per class (None: all 1,000)
BATCH_SIZE = 128
TRAIN = TrainConfig(epochs=env.pick(full=3, smoke=2), lr=2e-3, warmup_epochs=0.5, weight_decay=0.05)
RUN_DIR = DATA / "runs" / f"02_position_embeddings_brief_{env.get_profile()}"
SEQ_LENS = env.pick(full=[64, 128, 256, 512, 1024, 2048, 4096], smoke=[64, 128, 256, 512, 1024, 2048])
if env.is_smoke() and DEVICE.type == "cpu":
    torch.set_num_threads(1)  # smoke runs share a few CPU cores with other jobs: one thread avoids threads waiting on each other
TIMING_HEAD_DIM = 64     # head dimension of the timed attention (ViT-B's head size)
TIMING_REPEATS = env.pick(full=5, smoke=3)

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# Start from the tokens $X \in \mathbb{R}^{N \times C}$ (one row per token). Three learned linear
# maps give every token three roles:
#
# $$Q = X W_Q \;(\text{queries: what am I looking for?}),\quad
#   K = X W_K \;(\text{keys: what do I contain?}),\quad
#   V = X W_V \;(\text{values: what do I pass on?}),$$
#
# with $W_Q, W_K, W_V \in \mathbb{R}^{C \times d}$. Token $i$ scores every token $j$ by how well its
# query matches that key, turns the scores of its row into weights that are positive and sum to
# one, and returns the weighted average of the values:
#
# $$s_{ij} = \frac{q_i \cdot k_j}{\sqrt{d}}, \qquad
#   a_{ij} = \frac{e^{s_{ij}}}{\sum_{l=1}^{N} e^{s_{il}}}, \qquad
#   \text{out}_i = \sum_{j=1}^{N} a_{ij}\, v_j .$$
#
# In matrix form, the whole layer is three products and a row-wise softmax:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d}}\Big)\, V .$$
#
# We run it on real tokens: the 65 tokens (CLS + 64 patches) that a fresh seed ViT makes from
# CIFAR-10 test images.

# %%
config = ViTConfig.cifar10_seed()
test_images, test_labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)  # uint8 (10000, 3, 32, 32)
test_images, test_labels = subset(test_images, test_labels, per_class=TEST_PER_CLASS)
test_loader = TensorLoader(test_images, test_labels, 500, train=False, device=DEVICE)
torch.manual_seed(0)
model = ViT(config).to(DEVICE).eval()
images, labels = next(iter(test_loader))
images, labels = images[:2], labels[:2]  # (2, 3, 32, 32) normalised
with torch.no_grad():
    X = model.embed(images)  # (2, 65, 48): B images, N tokens, C channels
B, N, C = X.shape
print(f"tokens X: B={B} images, N={N} tokens, C={C} channels ({source_name('cifar10', DATA)})")

# %%
d = C  # one head that uses all channels, for now
torch.manual_seed(0)
W_q, W_k, W_v = (nn.Linear(C, d, bias=True).to(DEVICE) for _ in range(3))
with torch.no_grad():
    Q, K, V = W_q(X), W_k(X), W_v(X)  # (B, N, d) each
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d)  # (B, N, N): s_ij for every pair
    weights = scores.softmax(dim=-1)  # (B, N, N): row i says where token i looks
    out = weights @ V  # (B, N, d): each output is a weighted average of values
print(f"Q, K, V {tuple(Q.shape)} -> scores {tuple(scores.shape)} -> weights {tuple(weights.shape)} -> out {tuple(out.shape)}")

# %% [markdown]
# Each row of the weights is a probability distribution over the tokens: positive entries that
# sum to one. So $\text{out}_i$ lies inside the convex hull of the values: attention *mixes*, it
# never amplifies. Checked:

# %%
row_sums = weights.sum(dim=-1)  # (B, N)
print(f"row sums: min {row_sums.min():.7f}, max {row_sums.max():.7f}; weights in [{weights.min():.2e}, {weights.max():.3f}]")
assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=ATOL)
assert (weights > 0).all() and (weights < 1).all()
assert (out <= V.max(dim=1, keepdim=True).values + ATOL).all() and (out >= V.min(dim=1, keepdim=True).values - ATOL).all()

# %% [markdown]
# ## 2. Why divide by $\sqrt{d}$?
#
# Suppose the entries of $q$ and $k$ are independent with mean 0 and variance 1 (roughly what
# LayerNorm and a sensible initialisation give). Then $q \cdot k = \sum_{m=1}^{d} q_m k_m$ is a sum of
# $d$ independent terms, each with mean 0 and variance $\mathbb{E}[q_m^2]\,\mathbb{E}[k_m^2] = 1$, so
#
# $$\operatorname{Var}(q \cdot k) = d, \qquad \operatorname{Var}\Big(\frac{q \cdot k}{\sqrt{d}}\Big) = 1 .$$
#
# Without the scale, the typical score grows like $\sqrt{d}$. We measure it:

# %%
torch.manual_seed(0)
variance_rows = []
for dim in DIMS:
    q, k = torch.randn(SAMPLES, dim), torch.randn(SAMPLES, dim)  # (SAMPLES, d) each
    dots = (q * k).sum(dim=-1)  # (SAMPLES,): one q.k per pair
    variance_rows.append((dim, dots.var().item(), (dots / math.sqrt(dim)).var().item()))
print(f"{'d':>6} {'Var(q.k)':>10} {'Var(q.k)/d':>11} {'Var(q.k/sqrt d)':>16}")
for dim, var, scaled in variance_rows:
    print(f"{dim:>6} {var:>10.1f} {var / dim:>11.3f} {scaled:>16.3f}")
    assert 0.9 < var / dim < 1.1 and 0.9 < scaled < 1.1  # Var = d, and 1 after scaling

# %% [markdown]
# Large scores are a problem because of what the softmax does with them. Scale all scores by
# a factor $t$: as $t$ grows, $\operatorname{softmax}(t\,s)$ tends to a one-hot vector on the
# largest score. A one-hot attention row copies a single token and, worse, stops learning. The
# softmax Jacobian is
#
# $$\frac{\partial a_i}{\partial s_j} = a_i(\delta_{ij} - a_j), \qquad J = \operatorname{diag}(a) - a a^\top ,$$
#
# and for a one-hot $a$ every entry is 0: no gradient flows back to the queries and keys.
# We measure four things for rows of $64$ scores $q \cdot k$ with and without the scale: the
# largest weight in a row, the row's entropy (uniform over 64 keys would be
# $\ln 64 \approx 4.16$ nats), the size of the Jacobian $\lVert J \rVert_F$, and the share of
# rows that are saturated (largest weight above 0.99, so $J \approx 0$).

# %%
def softmax_stats(scores: torch.Tensor) -> dict:
    """Mean max weight, entropy (nats) and Jacobian Frobenius norm over rows of `scores` (R, KEYS)."""
    a = scores.softmax(dim=-1)  # (R, KEYS)
    entropy = -(a * a.clamp_min(1e-30).log()).sum(-1)  # (R,)
    jacobian = torch.diag_embed(a) - a[:, :, None] * a[:, None, :]  # (R, KEYS, KEYS)
    top = a.max(-1).values  # (R,)
    return {"max weight": top.mean().item(), "entropy": entropy.mean().item(),
            "|J|": jacobian.flatten(1).norm(dim=-1).mean().item(), "saturated": (top > 0.99).float().mean().item()}


torch.manual_seed(0)
saturation = {}
for dim in DIMS:
    q, k = torch.randn(500, 1, dim), torch.randn(500, KEYS, dim)  # 500 rows of 64 keys
    raw = (q * k).sum(-1)  # (500, KEYS): unscaled scores
    saturation[dim] = {"unscaled": softmax_stats(raw), "scaled": softmax_stats(raw / math.sqrt(dim))}
columns = ["max weight", "entropy", "|J|", "saturated"]
print(f"{'':>6} | {'unscaled: q.k':^44} | {'scaled: q.k / sqrt(d)':^44}")
print(f"{'d':>6} | " + " ".join(f"{c:>10}" for c in columns) + " | " + " ".join(f"{c:>10}" for c in columns))
for dim, stats in saturation.items():
    cells = [" ".join(f"{stats[kind][c]:>10.3f}" for c in columns) for kind in ("unscaled", "scaled")]
    print(f"{dim:>6} | {cells[0]} | {cells[1]}")

# %% [markdown]
# Without the scale, the rows collapse towards one-hot as $d$ grows: at the head size of ViT-B
# ($d = 64$) a good share of rows is already saturated, at $d = 1024$ most are, and the
# Jacobian shrinks with them. (A near-uniform row has a modest Jacobian too, each entry about
# $1/N$; the danger is the one-hot end, where it vanishes.) With the scale, every $d$ gives
# the same distribution, and no row saturates. The checks:

# %%
unscaled = {dim: saturation[dim]["unscaled"] for dim in DIMS}
scaled = {dim: saturation[dim]["scaled"] for dim in DIMS}
for dim in [64, 256, 1024]:
    assert unscaled[dim]["max weight"] > 0.5 and unscaled[dim]["entropy"] < 2.0  # mass piles on one key
jacobians = [unscaled[dim]["|J|"] for dim in DIMS[1:]]
assert all(later < earlier for earlier, later in zip(jacobians, jacobians[1:]))  # gradient shrinks with d
assert unscaled[1024]["|J|"] < 0.5 * scaled[1024]["|J|"] and unscaled[1024]["saturated"] > 0.5
assert all(scaled[dim]["saturated"] < 0.01 for dim in DIMS)
scaled_max = [scaled[dim]["max weight"] for dim in DIMS]
assert max(scaled_max) - min(scaled_max) < 0.05  # after scaling, d no longer matters

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
axes[0].loglog([r[0] for r in variance_rows], [r[1] for r in variance_rows], "o-", label="Var(q.k)")
axes[0].loglog([r[0] for r in variance_rows], [r[2] for r in variance_rows], "s-", label="Var(q.k / sqrt d)")
axes[0].loglog(DIMS, DIMS, "k:", lw=0.8, label="d")
axes[0].set(xlabel="head dimension d", title="score variance (measured)")
for ax, key, title in [(axes[1], "saturated", "share of rows with max weight > 0.99"),
                       (axes[2], "|J|", "softmax Jacobian norm")]:
    ax.semilogx(DIMS, [saturation[dm]["unscaled"][key] for dm in DIMS], "o-", label="unscaled")
    ax.semilogx(DIMS, [saturation[dm]["scaled"][key] for dm in DIMS], "s-", label="scaled by 1/sqrt d")
    ax.set(xlabel="head dimension d", title=f"{title}, {KEYS} keys")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, FIGURES / "03_sqrt_d_scaling")
plt.show()

# %% [markdown]
# ## 3. Many heads
#
# One attention pattern per layer is restrictive: a token may need to look at its neighbours
# *and* at the object's outline at the same time. Multi-head attention runs $h$ attentions in
# parallel, each on its own $d_h = C / h$ slice of the projected queries, keys and values, and
# concatenates the results before one output projection $W_O$:
#
# $$\text{head}_m = \operatorname{Attention}(Q_m, K_m, V_m), \qquad
#   \operatorname{MHA}(X) = [\text{head}_1; \dots; \text{head}_h]\, W_O + b_O .$$
#
# Parameters and matmul work are those of one head of width $C$: the projections are still
# $C \times C$; what grows is the number of $N \times N$ weight matrices, $h$ per layer. The
# split is a pure reshape, which einops states directly: "the channels are (heads, head_dim);
# move heads next to the batch".

# %%
heads, head_dim = config.heads, C // config.heads
split = lambda t: rearrange(t, "b n (h d) -> b h n d", h=heads)  # (B, N, C) -> (B, h, N, d_h)
merge = lambda t: rearrange(t, "b h n d -> b n (h d)")  # (B, h, N, d_h) -> (B, N, C)
assert torch.equal(merge(split(Q)), Q)  # splitting and merging lose nothing
assert torch.equal(split(Q)[:, 1], Q[..., head_dim:2 * head_dim])  # head 1 owns channels 12..23
print(f"C={C} channels = {heads} heads x {head_dim}; split {tuple(Q.shape)} -> {tuple(split(Q).shape)}")

# %% [markdown]
# ## 4. Four implementations, one answer
#
# 1. **By hand**: separate $W_Q, W_K, W_V$ (each $C \to C$), split into heads, matmul, softmax, matmul, merge, $W_O$.
# 2. **Fused QKV**: one Linear $C \to 3C$ whose weight is $[W_Q; W_K; W_V]$ stacked; one matmul instead of three.
# 3. **PyTorch's fused kernel** `F.scaled_dot_product_attention`, which never shows us the weights
#    (on a GPU its flash-attention kernels need not even store the $N \times N$ matrix).
# 4. **`vit_core.Attention`**, given the same weights, on both of its paths (by default the fused
#    kernel; with `keep_weights = True` the explicit matmuls, and it keeps the weights in `.weights`).

# %%
W_o = nn.Linear(C, C).to(DEVICE)


def attention_by_hand(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = split(W_q(x)), split(W_k(x)), split(W_v(x))  # (B, h, N, d_h) each
    w = (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).softmax(dim=-1)  # (B, h, N, N)
    return W_o(merge(w @ v)), w  # (B, N, C), (B, h, N, N)


qkv = nn.Linear(C, 3 * C).to(DEVICE)
with torch.no_grad():
    qkv.weight.copy_(torch.cat([W_q.weight, W_k.weight, W_v.weight]))  # (3C, C): Q rows, then K, then V
    qkv.bias.copy_(torch.cat([W_q.bias, W_k.bias, W_v.bias]))


def attention_fused_qkv(x: torch.Tensor) -> torch.Tensor:
    q, k, v = rearrange(qkv(x), "b n (three h d) -> three b h n d", three=3, h=heads)  # (B, h, N, d_h) each
    w = (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).softmax(dim=-1)  # (B, h, N, N)
    return W_o(merge(w @ v))  # (B, N, C)


def attention_sdpa(x: torch.Tensor) -> torch.Tensor:
    q, k, v = rearrange(qkv(x), "b n (three h d) -> three b h n d", three=3, h=heads)  # (B, h, N, d_h) each
    return W_o(merge(F.scaled_dot_product_attention(q, k, v)))  # (B, N, C); scale 1/sqrt(d_h) by default


core = Attention(config).to(DEVICE).eval()
with torch.no_grad():
    core.qkv.weight.copy_(qkv.weight)
    core.qkv.bias.copy_(qkv.bias)
    core.proj.weight.copy_(W_o.weight)
    core.proj.bias.copy_(W_o.bias)

with torch.no_grad():
    by_hand, w_by_hand = attention_by_hand(X)
    results = {"fused qkv": attention_fused_qkv(X), "F.scaled_dot_product_attention": attention_sdpa(X),
               "vit_core.Attention (fused kernel)": core(X)}
    core.keep_weights = True  # the explicit path: the same maths, and the weights are kept
    results["vit_core.Attention (keep_weights)"] = core(X)
    core_weights = core.weights  # (B, h, N, N)
for name, result in results.items():
    print(f"{name:>38} vs by hand: max |difference| = {max_diff(result, by_hand):.1e}")
    assert torch.allclose(result, by_hand, rtol=RTOL, atol=ATOL), name
assert torch.allclose(core_weights, w_by_hand, rtol=RTOL, atol=ATOL)
print(f"attention weights returned by vit_core.Attention {tuple(core_weights.shape)} == by hand")

# %% [markdown]
# From here on, `vit_core.Attention` (inside every `Block` of the ViT) is our attention.
#
# ## 5. What does a head look at?
#
# Attention weights are easiest to read for the CLS token: row 0 of a layer's $(N \times N)$
# matrix says how much the CLS token takes from each patch. We look at a **briefly trained** seed
# model (the short run of notebook 02; a fresh model's weights would be nearly uniform and mean
# nothing). It is trained here if notebook 02 has not left its checkpoint behind.

# %%
train_images, train_labels = load_tensors("cifar10", "train", DATA, download=DOWNLOAD)  # uint8 (50000, 3, 32, 32)
if TRAIN_PER_CLASS is not None:
    train_images, train_labels = subset(train_images, train_labels, per_class=TRAIN_PER_CLASS)
train_loader = TensorLoader(train_images, train_labels, BATCH_SIZE, train=True, device=DEVICE)
found = (RUN_DIR / "checkpoint.pt").is_file()
print(f"{'loading' if found else 'no checkpoint at ' + str(RUN_DIR) + ': training'} the brief run "
      f"({TRAIN.epochs} epochs on {len(train_labels):,} images of {source_name('cifar10', DATA)})")
torch.manual_seed(0)
trained = ViT(config)  # the same initialisation as notebook 02
history = fit(trained, train_loader, test_loader, TRAIN, out_dir=RUN_DIR, resume=True, device=DEVICE)
trained.eval()
assert len(history) == TRAIN.epochs
print(f"briefly trained seed ViT: test accuracy {history[-1]['test_acc']:.1%} on {len(test_labels):,} images "
      f"(chance 10%); trained for {sum(h['seconds'] for h in history):.0f} s")

# %%
bird = CIFAR10_CLASSES.index("bird")
index = (test_labels == bird).nonzero().flatten()[0].item()
x_img = test_loader.transform(test_images[index:index + 1].to(DEVICE))  # (1, 3, 32, 32) normalised
with torch.no_grad():
    logits, attentions = trained(x_img, return_attention=True)  # list of depth x (1, heads, 65, 65)
    fast_logits = trained(x_img)
assert len(attentions) == config.depth and attentions[-1].shape == (1, config.heads, N, N)
assert torch.allclose(logits, fast_logits, rtol=RTOL, atol=ATOL)  # both attention paths, same model output
for layer_weights in attentions:
    assert torch.allclose(layer_weights.sum(-1), torch.ones(1, config.heads, N, device=DEVICE), atol=ATOL)
cls_rows = cls_attention(attentions, layer=-1)  # (1, heads, 64): CLS query over the patch keys
assert torch.allclose(cls_rows, attentions[-1][:, :, 0, 1:])
prediction = CIFAR10_CLASSES[logits.argmax().item()]
print(f"test image of a bird: predicted {prediction!r}; last layer, CLS attention on the CLS token itself per head: "
      + ", ".join(f"{w:.2f}" for w in attentions[-1][0, :, 0, 0].tolist()))

# %% [markdown]
# Left: the image. Then, for each head of the **last** layer, the CLS row reshaped to the
# $8 \times 8$ patch grid (how much each patch feeds the CLS token; the weight on the CLS
# token itself is left out and listed above). Right: the full $65 \times 65$ matrix of head 0,
# row $i$ = query token $i$, column $j$ = key token $j$; token 0 is CLS.

# %%
image_rgb = (test_images[index].float() / 255).permute(1, 2, 0)  # (32, 32, 3) for imshow
g = config.grid_size
fig, axes = plt.subplots(1, config.heads + 2, figsize=(2.4 * (config.heads + 2), 2.8))
axes[0].imshow(image_rgb)
axes[0].set_title(f"bird, predicted {prediction}", fontsize=8)
for h in range(config.heads):
    grid = rearrange(cls_rows[0, h].cpu(), "(gh gw) -> gh gw", gh=g)  # (8, 8)
    axes[h + 1].imshow(image_rgb)
    axes[h + 1].imshow(grid, cmap="inferno", alpha=0.6, extent=(-0.5, 31.5, 31.5, -0.5), interpolation="nearest")
    axes[h + 1].set_title(f"layer {config.depth}, head {h}: CLS -> patches", fontsize=8)
axes[-1].imshow(attentions[-1][0, 0].cpu(), cmap="viridis")
axes[-1].set_title("layer 4, head 0: all 65 x 65", fontsize=8)
axes[-1].set_xlabel("key token", fontsize=7)
axes[-1].set_ylabel("query token", fontsize=7)
for ax in axes[:-1]:
    ax.axis("off")
fig.suptitle(f"{source_name('cifar10', DATA)}, briefly trained seed ViT (test acc {history[-1]['test_acc']:.0%}, "
             f"{env.get_profile()} profile)", fontsize=8)
fig.tight_layout()
save_figure(fig, FIGURES / "03_attention_heads")
plt.show()

# %% [markdown]
# How peaked are these rows? A row's entropy compared with the uniform $\ln 65$ tells us whether
# a head spreads its attention over the whole image or focuses on a few tokens. Measured for every
# layer and head (averaged over all 65 query tokens of this image):

# %%
entropy = torch.stack([-(w * w.clamp_min(1e-12).log()).sum(-1).mean(-1)[0] for w in attentions])  # (depth, heads)
print(f"mean attention entropy per layer (rows) and head (columns), in nats; uniform = ln {N} = {math.log(N):.2f}")
for layer, row in enumerate(entropy.tolist(), start=1):
    print(f"layer {layer}: " + "  ".join(f"{v:5.2f}" for v in row))
assert (entropy <= math.log(N) + 1e-4).all()  # no distribution beats uniform

# %% [markdown]
# ## 6. The price: $O(N^2)$ time and memory
#
# The score matrix has $N \times N$ entries per head, and both matrix products touch all of them:
# $QK^\top$ costs $N \cdot N \cdot d$ multiply-adds and so does $AV$. Doubling the sequence length
# should therefore **quadruple** the time and the memory of the weights. We time one attention
# head of size $d = 64$, written with explicit matmuls (the version that stores the weights) and
# with PyTorch's fused kernel, for $N$ from 64 up. The memory column is the size of the
# $N \times N$ float32 weight tensor, computed from its shape. On the CPU we time one thread and
# count its CPU time, not the wall clock: this machine is shared, and while another job holds the
# core a wall clock keeps running but the thread's CPU time does not (the fastest of a few runs
# is kept).

# %%
def time_ms(fn, repeats: int) -> float:
    """Fastest time of fn() in milliseconds: CPU time of one thread on the CPU, wall time on a GPU."""
    threads, times = torch.get_num_threads(), []
    # On the CPU, this thread's CPU time: time while another job holds the core does not count.
    clock = time.perf_counter if DEVICE.type == "cuda" else time.thread_time
    if DEVICE.type == "cpu":
        torch.set_num_threads(1)
    fn()  # warm-up
    for _ in range(repeats):
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        start = clock()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - start)
    torch.set_num_threads(threads)
    return 1000 * min(times)


def manual_attention(q, k, v):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # (1, 1, N, N)
    return w @ v  # (1, 1, N, d)


timing_rows = []
with torch.inference_mode():
    for n in SEQ_LENS:
        q, k, v = torch.randn(3, 1, 1, n, TIMING_HEAD_DIM, device=DEVICE)  # (1, 1, N, d) each
        assert torch.allclose(manual_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-4)
        timing_rows.append({"N": n, "weights MiB": n * n * 4 / 2 ** 20,
                            "matmul ms": time_ms(lambda: manual_attention(q, k, v), TIMING_REPEATS),
                            "fused ms": time_ms(lambda: F.scaled_dot_product_attention(q, k, v), TIMING_REPEATS)})
TIMED_ON = env.hardware_name()
if DEVICE.type == "cpu":
    TIMED_ON = TIMED_ON.replace(f"{torch.get_num_threads()} threads", "timed on 1 thread")
print(f"one head, d = {TIMING_HEAD_DIM}, batch 1, measured on {TIMED_ON}:")
print(f"{'N':>6} {'N x N weights (MiB)':>20} {'matmul ms':>10} {'fused ms':>9}")
for r in timing_rows:
    print(f"{r['N']:>6} {r['weights MiB']:>20.3f} {r['matmul ms']:>10.3f} {r['fused ms']:>9.3f}")

# %% [markdown]
# On a log-log plot a power law $t \propto N^p$ is a straight line of slope $p$. We fit the slope
# in two ranges. For $256 \le N \le 1024$ the matrices fit in the processor's caches and the
# work per entry is constant: the slope should be 2. At short sequences fixed overheads
# dominate and flatten the curve; at long ones, on a CPU, the slope often comes out *above* 2:
# once the $N \times N$ matrix (16 MiB at $N = 2048$) no longer fits in the caches, every entry
# travels to and from main memory, which costs more per entry. Memory is exactly quadratic by
# construction.

# %%
ns = np.array([r["N"] for r in timing_rows], dtype=float)
ranges = {"256..1024": (ns >= 256) & (ns <= 1024), ">= 1024": ns >= 1024}
slopes = {}
for key in ["weights MiB", "matmul ms", "fused ms"]:
    values = np.array([r[key] for r in timing_rows])
    for name, mask in ranges.items():
        slopes[key, name] = np.polyfit(np.log(ns[mask]), np.log(values[mask]), 1)[0]
print(f"{'log-log slope':>14} " + " ".join(f"{'N ' + name:>11}" for name in ranges))
for key in ["weights MiB", "matmul ms", "fused ms"]:
    print(f"{key:>14} " + " ".join(f"{slopes[key, name]:>11.2f}" for name in ranges))
assert all(abs(slopes["weights MiB", name] - 2) < 1e-9 for name in ranges)
assert 1.6 < slopes["matmul ms", "256..1024"] < 2.4  # quadratic while the matrix fits in cache
assert 1.5 < slopes["fused ms", "256..1024"] < 2.5
assert slopes["matmul ms", ">= 1024"] > 1.6  # and no better than quadratic beyond

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].loglog(ns, [r["matmul ms"] for r in timing_rows], "o-", label="matmul + softmax")
axes[0].loglog(ns, [r["fused ms"] for r in timing_rows], "s-", label="F.scaled_dot_product_attention")
anchor = SEQ_LENS.index(256)
ref = timing_rows[anchor]["matmul ms"] * (ns / ns[anchor]) ** 2  # slope 2 through the N = 256 point
axes[0].loglog(ns, ref, "k--", lw=0.8, label="slope 2")
axes[0].set(xlabel="sequence length N", ylabel="ms", title=f"one head, d={TIMING_HEAD_DIM}\n{TIMED_ON}")
axes[1].loglog(ns, [r["weights MiB"] for r in timing_rows], "o-", label="N x N float32 weights (from shapes)")
axes[1].set(xlabel="sequence length N", ylabel="MiB per head", title="attention weight memory")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, FIGURES / "03_attention_cost")
plt.show()

# %% [markdown]
# For scale: ViT-B/16 at 224 px has $N = 197$ tokens, so each head's weight matrix is
# $197^2 \approx 39\text{k}$ entries, tiny. At 1024 px with 16 px patches it would be
# $4097^2 \approx 16.8\text{M}$ entries per head per layer, which is why high-resolution ViTs use
# larger patches, windowed attention or fused kernels that never store the matrix.
#
# ## Summary
#
# - Attention is $\operatorname{softmax}(QK^\top/\sqrt{d})\,V$: every output is a convex mix of values (rows sum to 1).
# - Without the $1/\sqrt{d}$, score variance grows like $d$ and the softmax saturates into one-hot rows with
#   vanishing gradients; with it, the statistics do not depend on $d$ (measured above).
# - Heads are a reshape: `b n (h d) -> b h n d`; by-hand, fused QKV, `F.scaled_dot_product_attention` and
#   `vit_core.Attention` agree to $10^{-5}$.
# - Memory grows exactly as $N^2$; measured time has log-log slope about 2 while the matrix fits in
#   cache, and more beyond, on a CPU (both printed above).
#
# Next, notebook 04: the rest of the Transformer block (LayerNorm, MLP, residuals).
