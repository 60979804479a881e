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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/03_self_attention.ipynb)
#
# # 03 · Self-attention, from matrix products to `vit_core.Attention`
#
# Self-attention is the one place in a Transformer where tokens talk to each other; everything
# else in the block (notebook 04) works on one token at a time. In this notebook we build it from
# three matrix products and a softmax, measure what goes wrong without the $\sqrt{d_h}$ in it,
# split it into heads, and measure its famous quadratic cost.
#
# **What you will learn**
# - scaled dot-product attention, derived and written with plain matmuls;
# - why scores are divided by $\sqrt{d_h}$: the variance of $q \cdot k$ and softmax saturation, measured,
#   and what the variances are in a fresh and in a trained model;
# - multi-head attention: splitting and merging heads with einops;
# - that a hand-written version, a fused-QKV version, `F.scaled_dot_product_attention` and
#   `vit_core.Attention` compute the same thing;
# - how to read one head's attention weights on an image;
# - how time and memory grow with sequence length $T$ (quadratically), measured.
#
# Notation as in notebook 01: $T = N + 1$ tokens of width $D$, $h$ heads of width $d_h = D/h$.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %%
import math
import time
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from vit_core import Attention, ViT, ViTConfig
from course import max_diff
from vit_core.attention_maps import cls_attention
from vit_core.data import CIFAR10_CLASSES, TensorLoader, load_tensors, source_name
from course import figures, recipes
from course import runs as course_runs

torch.manual_seed(0)
DEVICE, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above
plt.rcParams.update({"font.size": 10})  # with figures at most ~8.6 in wide: >= 9 pt on screen (course.figures)

# Hyper-parameters of this notebook, in one place.
ATOL = RTOL = 1e-5       # float32 tolerance: the same sums in a different order differ by ~1e-7
SAMPLES = 20_000         # random (q, k) pairs per dimension in the variance experiment
KEYS = 64                # keys per softmax row in the saturation experiment
DIMS = [4, 16, 64, 256, 1024]  # head widths d_h to test
SATURATED = 0.99         # a softmax row counts as saturated when its largest weight is above this
RECIPE = recipes.RECIPES["improved-cpu"]  # a model trained in notebook 06; there you will see how
STATS_IMAGES = 64        # test images for the variance statistics of section 2
SEQ_LENS = env.pick(full=[64, 128, 256, 512, 1024, 2048, 4096], smoke=[64, 128, 256, 512, 1024, 2048])
if DEVICE.type == "cpu":
    torch.set_num_threads(1)  # a shared CPU: one thread avoids threads waiting on each other
TIMING_HEAD_DIM = 64     # head width d_h of the timed attention (ViT-B's)
TIMING_REPEATS = env.pick(full=7, smoke=5)

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# Start from the tokens $X \in \mathbb{R}^{T \times D}$ (one row per token). Three learned linear
# maps give every token three roles:
#
# $$Q = X W_Q \;(\text{queries: what am I looking for?}),\quad
#   K = X W_K \;(\text{keys: what do I contain?}),\quad
#   V = X W_V \;(\text{values: what do I pass on?}),$$
#
# with $W_Q, W_K, W_V \in \mathbb{R}^{D \times d_h}$ (one head for now, so $d_h = D$; section 3
# splits the width into $h$ heads). Token $i$ scores every token $j$ by how well its query
# matches that key, turns the scores of its row into weights that are positive and sum to one,
# and returns the weighted average of the values:
#
# $$s_{ij} = \frac{q_i \cdot k_j}{\sqrt{d_h}}, \qquad
#   a_{ij} = \frac{e^{s_{ij}}}{\sum_{l=1}^{T} e^{s_{il}}}, \qquad
#   \text{out}_i = \sum_{j=1}^{T} a_{ij}\, v_j .$$
#
# In matrix form, the whole layer is three products and a row-wise softmax:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_h}}\Big)\, V .$$
#
# We run it on real tokens: the $T$ tokens (CLS and $N$ patches) that a fresh tiny ViT makes
# from CIFAR-10 test images.

# %%
config = ViTConfig.cifar10_tiny()
MEAN, STD = recipes.NORMALIZE[RECIPE.normalize]  # CIFAR-10's channel statistics, as the trained model saw them
test_images, test_labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)  # uint8 (10000, 3, 32, 32)
test_loader = TensorLoader(test_images, test_labels, STATS_IMAGES, train=False, mean=MEAN, std=STD, device=DEVICE)
torch.manual_seed(0)
model = ViT(config).to(DEVICE).eval()
# the files are sorted by class: draw the images at random across the classes
pick = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(0))[:STATS_IMAGES]
stats_images = test_loader.transform(test_images[pick].to(DEVICE))  # (64, 3, 32, 32) normalised
images = stats_images[:2]  # (2, 3, 32, 32)
with torch.no_grad():
    X = model.embed(images)  # (2, 65, 48): B images, T tokens, D channels
B, T, D = X.shape
print(f"tokens X: B={B} images, T={T} tokens, D={D} channels ({source_name('cifar10', DATA)})")

# %%
d_h = D  # one head that uses all D channels, for now
torch.manual_seed(0)
W_q, W_k, W_v = (nn.Linear(D, d_h, bias=True).to(DEVICE) for _ in range(3))
with torch.no_grad():
    Q, K, V = W_q(X), W_k(X), W_v(X)  # (B, T, d_h) each
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_h)  # (B, T, T): s_ij for every pair
    weights = scores.softmax(dim=-1)  # (B, T, T): row i says where token i looks
    out = weights @ V  # (B, T, d_h): each output is a weighted average of values
print(f"Q, K, V {tuple(Q.shape)} -> scores {tuple(scores.shape)} -> weights {tuple(weights.shape)} -> out {tuple(out.shape)}")

# %% [markdown]
# Each row of the weights is a probability distribution over the tokens: positive entries that
# sum to one. So $\text{out}_i$ lies inside the convex hull of the values: attention *mixes*, it
# never amplifies. Checked:

# %%
row_sums = weights.sum(dim=-1)  # (B, T)
print(f"row sums: min {row_sums.min():.7f}, max {row_sums.max():.7f}; weights in [{weights.min():.2e}, {weights.max():.3f}]")
assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=ATOL)
assert (weights > 0).all() and (weights < 1).all()
assert (out <= V.max(dim=1, keepdim=True).values + ATOL).all() and (out >= V.min(dim=1, keepdim=True).values - ATOL).all()

# %% [markdown]
# **What this shows.** Every output token is a weighted average of the value vectors, with
# weights that sum to one: attention can only mix what is there.
#
# <details><summary>Caveats</summary>
#
# These projections are random, so the mixing is meaningless so far.
# </details>
#
# ## 2. Why divide by $\sqrt{d_h}$?
#
# Take a reference case: the entries of $q$ and $k$ independent with mean 0 and variance 1.
# Then $q \cdot k = \sum_{m=1}^{d_h} q_m k_m$ is a sum of $d_h$ independent terms, each with
# mean 0 and variance $\mathbb{E}[q_m^2]\,\mathbb{E}[k_m^2] = 1$, so
#
# $$\operatorname{Var}(q \cdot k) = d_h, \qquad \operatorname{Var}\Big(\frac{q \cdot k}{\sqrt{d_h}}\Big) = 1 .$$
#
# More generally, with entries of variance $\sigma_q^2$ and $\sigma_k^2$,
# $\operatorname{Var}(q \cdot k) = d_h\, \sigma_q^2 \sigma_k^2$: whatever the variances, the
# unscaled score grows like $\sqrt{d_h}$. We measure the reference case:

# %%
torch.manual_seed(0)
variance_rows = []
for dim in DIMS:
    q, k = torch.randn(SAMPLES, dim), torch.randn(SAMPLES, dim)  # (SAMPLES, d_h) each
    dots = (q * k).sum(dim=-1)  # (SAMPLES,): one q.k per pair
    variance_rows.append((dim, dots.var().item(), (dots / math.sqrt(dim)).var().item()))
print(f"{'d_h':>6} {'Var(q.k)':>10} {'Var(q.k)/d_h':>13} {'Var(q.k/sqrt d_h)':>18}")
for dim, var, scaled in variance_rows:
    print(f"{dim:>6} {var:>10.1f} {var / dim:>13.3f} {scaled:>18.3f}")
    assert 0.9 < var / dim < 1.1 and 0.9 < scaled < 1.1  # Var = d_h, and 1 after scaling

# %% [markdown]
# Variance 1 is a reference, not what a real model has. Each token entering attention has been
# normalised to entries of about unit size (by a layer that notebook 04 introduces), but the
# query is $q = x W_Q$, a sum of $D$ products: with weights of standard deviation $\sigma$ its
# entries have variance about $D \sigma^2$. `vit_core` initialises every Linear with
# $\sigma$ = 0.02 (printed below), as timm does, so for the tiny ViT that variance is far
# below 1. We measure it in every block, on test images, for the fresh model and for a trained
# one: a model trained in notebook 06 (there you will see how). The test images are drawn at
# random across the classes. The model computes Q, K and V with one matrix, split here; section 4
# explains why.

# %%
trained = course_runs.load_exported(RECIPE.name).to(DEVICE).eval()  # shipped in data/checkpoints/
print(f"trained model: {RECIPE.name}, trained in notebook 06")


def qk_variances(net: ViT, x: torch.Tensor) -> list[tuple[float, float, float]]:
    """Per block: variance of the query entries, of the key entries and of the scaled scores
    q.k / sqrt(d_h), over all images, heads and tokens."""
    captured = []
    hooks = [block.attn.qkv.register_forward_hook(lambda module, args, out: captured.append(out))
             for block in net.encoder.blocks]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    rows = []
    for qkv_out in captured:  # (B, T, 3D) per block
        q, k, _ = rearrange(qkv_out, "b t (three h d) -> three b h t d", three=3, h=net.config.heads)  # (B, h, T, d_h)
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, T, T)
        rows.append((q.var().item(), k.var().item(), s.var().item()))
    return rows


sigma = model.encoder.blocks[0].attn.qkv.weight.std().item()
fresh_var, trained_var = qk_variances(model, stats_images), qk_variances(trained, stats_images)
print(f"fresh model: qkv weights std {sigma:.3f}, so D * sigma^2 = {D * sigma ** 2:.3f}; "
      f"{len(stats_images)} test images across the classes, d_h = {config.dim // config.heads}")
print(f"{'block':>5} | {'fresh: Var(q)':>13} {'Var(k)':>7} {'Var(s)':>7} | {'trained: Var(q)':>15} {'Var(k)':>7} {'Var(s)':>7}")
for i, (f, t) in enumerate(zip(fresh_var, trained_var), start=1):
    print(f"{i:>5} | {f[0]:>13.3f} {f[1]:>7.3f} {f[2]:>7.4f} | {t[0]:>15.3f} {t[1]:>7.3f} {t[2]:>7.3f}")
assert all(0.5 * D * sigma ** 2 < f[0] < 2 * D * sigma ** 2 and f[0] < 0.1 for f in fresh_var)  # far below 1
assert all(t[2] > 10 * f[2] for f, t in zip(fresh_var, trained_var))  # training grows the scores

# %% [markdown]
# **What this shows.** At initialisation $q$ and $k$ have variance near $D\sigma^2$, far below 1,
# so every attention row is close to uniform, with or without the scale; training makes the
# scores much larger. So the case for $1/\sqrt{d_h}$ is not that the variances are 1: whatever
# they are, the score's spread grows with the head width, and the scale removes that dependence.
#
# <details><summary>Caveats</summary>
#
# One trained model, one batch of images: the trained values are an example, not a law.
# </details>
#
# Large scores are a problem because of what the softmax does with them. Scale all scores by
# a factor $t$: as $t$ grows, $\operatorname{softmax}(t\,s)$ tends to a one-hot vector on the
# largest score. A one-hot attention row copies a single token and, worse, stops learning. The
# softmax Jacobian is
#
# $$\frac{\partial a_i}{\partial s_j} = a_i(\delta_{ij} - a_j), \qquad J = \operatorname{diag}(a) - a a^\top ,$$
#
# and for a one-hot $a$ every entry is 0: no gradient flows back to the queries and keys.
# Back in the reference case (unit variances), we measure for rows of 64 scores, with and
# without the scale: the largest weight, the entropy, the Jacobian's size $\lVert J \rVert_F$,
# and the share of saturated rows (largest weight above the printed threshold, so $J \approx 0$).

# %%
def softmax_stats(scores: torch.Tensor) -> dict:
    """Mean max weight, entropy (nats) and Jacobian Frobenius norm over rows of `scores` (R, KEYS)."""
    a = scores.softmax(dim=-1)  # (R, KEYS)
    entropy = -(a * a.clamp_min(1e-30).log()).sum(-1)  # (R,)
    jacobian = torch.diag_embed(a) - a[:, :, None] * a[:, None, :]  # (R, KEYS, KEYS)
    top = a.max(-1).values  # (R,)
    return {"max weight": top.mean().item(), "entropy": entropy.mean().item(),
            "|J|": jacobian.flatten(1).norm(dim=-1).mean().item(), "saturated": (top > SATURATED).float().mean().item()}


torch.manual_seed(0)
saturation = {}
for dim in DIMS:
    q, k = torch.randn(500, 1, dim), torch.randn(500, KEYS, dim)  # 500 rows of 64 keys
    raw = (q * k).sum(-1)  # (500, KEYS): unscaled scores
    saturation[dim] = {"unscaled": softmax_stats(raw), "scaled": softmax_stats(raw / math.sqrt(dim))}
columns = ["max weight", "entropy", "|J|", "saturated"]
print(f"{KEYS} keys per row; uniform entropy ln {KEYS} = {math.log(KEYS):.2f} nats; saturated: max weight > {SATURATED}")
print(f"{'':>6} | {'unscaled: q.k':^43} | {'scaled: q.k / sqrt(d_h)':^43}")
print(f"{'d_h':>6} | " + " ".join(f"{c:>10}" for c in columns) + " | " + " ".join(f"{c:>10}" for c in columns))
for dim, stats in saturation.items():
    cells = [" ".join(f"{stats[kind][c]:>10.3f}" for c in columns) for kind in ("unscaled", "scaled")]
    print(f"{dim:>6} | {cells[0]} | {cells[1]}")

# %% [markdown]
# Without the scale, the rows collapse towards one-hot as $d_h$ grows: at ViT-B's head width
# ($d_h = 64$) a sizeable share of rows is already saturated, at $d_h = 1024$ most are, and
# the Jacobian shrinks with them. With the scale, every $d_h$ gives the same distribution, and
# no row saturates. The checks:

# %%
unscaled = {dim: saturation[dim]["unscaled"] for dim in DIMS}
scaled = {dim: saturation[dim]["scaled"] for dim in DIMS}
for dim in [64, 256, 1024]:
    assert unscaled[dim]["max weight"] > 0.5 and unscaled[dim]["entropy"] < 2.0  # mass piles on one key
assert unscaled[64]["saturated"] > 0.1  # a sizeable share already at d_h = 64
jacobians = [unscaled[dim]["|J|"] for dim in DIMS[1:]]
assert all(later < earlier for earlier, later in zip(jacobians, jacobians[1:]))  # gradient shrinks with d_h
assert unscaled[1024]["|J|"] < 0.5 * scaled[1024]["|J|"] and unscaled[1024]["saturated"] > 0.5
assert all(scaled[dim]["saturated"] < 0.01 for dim in DIMS)
scaled_max = [scaled[dim]["max weight"] for dim in DIMS]
assert max(scaled_max) - min(scaled_max) < 0.05  # after scaling, d_h no longer matters

# %%
fig, axes = plt.subplots(1, 3, figsize=(8.6, 3.2))
axes[0].loglog([r[0] for r in variance_rows], [r[1] for r in variance_rows], "o-", label="Var(q.k)")
axes[0].loglog([r[0] for r in variance_rows], [r[2] for r in variance_rows], "s-", label="Var(q.k/√d_h)")
axes[0].loglog(DIMS, DIMS, "k:", lw=0.8, label="d_h")
axes[0].set(xlabel="head width d_h", title="score variance")
for ax, key, title in [(axes[1], "saturated", f"rows with max > {SATURATED}"), (axes[2], "|J|", "softmax Jacobian |J|")]:
    ax.semilogx(DIMS, [saturation[dm]["unscaled"][key] for dm in DIMS], "o-", label="unscaled")
    ax.semilogx(DIMS, [saturation[dm]["scaled"][key] for dm in DIMS], "s-", label="scaled")
    ax.set(xlabel="head width d_h", title=f"{title}\n{KEYS} keys a row", ylim=(0, None))
axes[1].set_ylim(0, 1)
for ax in axes:
    ax.legend(fontsize=9)
fig.tight_layout()
figures.save(fig, FIGURES / "03_sqrt_d_scaling")
plt.show()

# %% [markdown]
# **What this shows.** Without the scale the score variance follows $d_h$ and the softmax
# saturates as $d_h$ grows, killing its gradient; with it, the statistics do not move with $d_h$.
#
# <details><summary>Caveats</summary>
#
# A synthetic experiment with independent Gaussian queries and keys; real ones are correlated
# and have other variances (measured above), so it shows the *trend* with $d_h$, not the values
# in a given model.
# </details>
#
# ## 3. Many heads
#
# One attention pattern per layer is restrictive: a token may need to look at its neighbours
# *and* at the object's outline at the same time. Multi-head attention runs $h$ attentions in
# parallel, each on its own $d_h = D / h$ slice of the projected queries, keys and values, and
# concatenates the results before one output projection $W_O$:
#
# $$\text{head}_m = \operatorname{Attention}(Q_m, K_m, V_m), \qquad
#   \operatorname{MHA}(X) = [\text{head}_1; \dots; \text{head}_h]\, W_O + b_O .$$
#
# Parameters and matmul work are those of one head of width $D$: the projections are still
# $D \times D$; what grows is the number of $T \times T$ weight matrices, $h$ per layer. The
# split is a pure reshape, which einops states directly: "the channels are (heads, head width);
# move heads next to the batch".

# %%
heads, head_dim = config.heads, D // config.heads
split = lambda t: rearrange(t, "b t (h d) -> b h t d", h=heads)  # (B, T, D) -> (B, h, T, d_h)
merge = lambda t: rearrange(t, "b h t d -> b t (h d)")  # (B, h, T, d_h) -> (B, T, D)
assert torch.equal(merge(split(Q)), Q)  # splitting and merging lose nothing
assert torch.equal(split(Q)[:, 1], Q[..., head_dim:2 * head_dim])  # head 1 owns channels 12..23
print(f"D={D} channels = h={heads} heads x d_h={head_dim}; split {tuple(Q.shape)} -> {tuple(split(Q).shape)}")

# %% [markdown]
# **What this shows.** Splitting into heads and merging back loses nothing: each head owns one
# slice of $d_h$ consecutive channels of the projections.

# %% [markdown]
# ## 4. Four implementations, one answer
#
# 1. **By hand**: separate $W_Q, W_K, W_V$ (each $D \to D$), split into heads, matmul, softmax, matmul, merge, $W_O$.
# 2. **Fused QKV**: one Linear $D \to 3D$ whose weight is $[W_Q; W_K; W_V]$ stacked; one matmul instead of three.
# 3. **PyTorch's fused kernel** `F.scaled_dot_product_attention`, which never shows us the weights
#    (on a GPU its flash-attention kernels need not even store the $T \times T$ matrix).
# 4. **`vit_core.Attention`**, given the same weights, on both of its paths: `forward` uses the fused
#    kernel; `forward_with_weights` does the explicit matmuls and returns `(output, weights)`.

# %%
W_o = nn.Linear(D, D).to(DEVICE)


def attention_by_hand(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = split(W_q(x)), split(W_k(x)), split(W_v(x))  # (B, h, T, d_h) each
    w = (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).softmax(dim=-1)  # (B, h, T, T)
    return W_o(merge(w @ v)), w  # (B, T, D), (B, h, T, T)


qkv = nn.Linear(D, 3 * D).to(DEVICE)
with torch.no_grad():
    qkv.weight.copy_(torch.cat([W_q.weight, W_k.weight, W_v.weight]))  # (3D, D): Q rows, then K, then V
    qkv.bias.copy_(torch.cat([W_q.bias, W_k.bias, W_v.bias]))


def attention_fused_qkv(x: torch.Tensor) -> torch.Tensor:
    q, k, v = rearrange(qkv(x), "b t (three h d) -> three b h t d", three=3, h=heads)  # (B, h, T, d_h) each
    w = (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).softmax(dim=-1)  # (B, h, T, T)
    return W_o(merge(w @ v))  # (B, T, D)


def attention_sdpa(x: torch.Tensor) -> torch.Tensor:
    q, k, v = rearrange(qkv(x), "b t (three h d) -> three b h t d", three=3, h=heads)  # (B, h, T, d_h) each
    return W_o(merge(F.scaled_dot_product_attention(q, k, v)))  # (B, T, D); scale 1/sqrt(d_h) by default


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
    # the explicit path: the same maths, and it returns the weights (B, h, T, T)
    results["vit_core.Attention (with weights)"], core_weights = core.forward_with_weights(X)
for name, result in results.items():
    print(f"{name:>38} vs by hand: max |difference| = {max_diff(result, by_hand):.1e}")
    assert torch.allclose(result, by_hand, rtol=RTOL, atol=ATOL), name
assert torch.allclose(core_weights, w_by_hand, rtol=RTOL, atol=ATOL)
print(f"attention weights returned by vit_core.Attention {tuple(core_weights.shape)} == by hand")

# %% [markdown]
# **What this shows.** Four ways of writing multi-head attention give the same output to float32
# rounding, and `vit_core.Attention` returns the same weights as the hand-written version
# (section 6 times two of them).
#
# From here on, `vit_core.Attention` (inside every `Block` of the ViT) is our attention.
#
# ## 5. What does a head look at?
#
# Attention weights are easiest to read for the CLS token: row 0 of a layer's $T \times T$
# matrix says how much the CLS token takes from each patch. We look at the trained model of
# section 2 (a fresh model's rows are nearly uniform).

# %%
bird = CIFAR10_CLASSES.index("bird")
index = (test_labels == bird).nonzero().flatten()[0].item()
x_img = test_loader.transform(test_images[index:index + 1].to(DEVICE))  # (1, 3, 32, 32) normalised
with torch.no_grad():
    logits, attentions = trained(x_img, return_attention=True)  # list of L x (1, h, T, T)
    fast_logits = trained(x_img)
assert len(attentions) == config.depth and attentions[-1].shape == (1, config.heads, T, T)
assert torch.allclose(logits, fast_logits, rtol=RTOL, atol=ATOL)  # both attention paths, same model output
for layer_weights in attentions:
    assert torch.allclose(layer_weights.sum(-1), torch.ones(1, config.heads, T, device=DEVICE), atol=ATOL)
cls_rows = cls_attention(attentions, layer=-1)  # (1, h, N): CLS query over the patch keys
assert torch.allclose(cls_rows, attentions[-1][:, :, 0, 1:])
prediction = CIFAR10_CLASSES[logits.argmax().item()]
print(f"test image {index}, a bird: predicted {prediction!r}; uniform attention would give every token 1/T = {1 / T:.4f}")
print("last block, weight of the CLS token on itself, per head: "
      + ", ".join(f"{w:.2f}" for w in attentions[-1][0, :, 0, 0].tolist()))

# %% [markdown]
# Top: the image and, for each head of the **last** block, the CLS row reshaped to the
# $G \times G$ patch grid (how much each patch feeds the CLS token; the weight on the CLS token
# itself is left out and printed above), all heads on **one colour scale**. Bottom: the full
# $T \times T$ matrices of heads 1 and 2 (one scale), row $i$ = query token $i$, column $j$ = key
# token $j$; token 0 is CLS.

# %%
image_rgb = (test_images[index].float() / 255).permute(1, 2, 0)  # (32, 32, 3) for imshow
g = config.grid_size
fig = plt.figure(figsize=(8.6, 6.2), layout="constrained")
top_fig, bottom_fig = fig.subfigures(2, 1, height_ratios=[1, 1.6])
axes = top_fig.subplots(1, config.heads + 1)
axes[0].imshow(image_rgb)
axes[0].set_title(f"predicted {prediction}")
top = cls_rows.max().item()  # one colour scale for every head
for h in range(config.heads):
    grid = rearrange(cls_rows[0, h].cpu(), "(gh gw) -> gh gw", gh=g)  # (G, G)
    shown = axes[h + 1].imshow(grid, cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
    axes[h + 1].set_title(f"head {h + 1}")
for ax in axes:
    ax.axis("off")
top_fig.colorbar(shown, ax=axes[1:], shrink=0.8, label="weight")
top_fig.suptitle(f"block {config.depth}: CLS row over the {g}x{g} patches (uniform: 1/T = {1 / T:.3f})")
full = attentions[-1][0, :2].cpu()  # (2, T, T): heads 1 and 2, every query row
for h, ax in enumerate(bottom_fig.subplots(1, 2)):
    matrix = ax.imshow(full[h], cmap="viridis", vmin=0, vmax=full.max().item())
    ax.set(title=f"head {h + 1}: all {T} x {T} weights", xlabel="key token", ylabel="query token" if h == 0 else None)
bottom_fig.colorbar(matrix, ax=bottom_fig.axes, shrink=0.8, label="weight")
fig.suptitle(f"{source_name('cifar10', DATA)}, test image {index}; {RECIPE.name} model")
figures.save(fig, FIGURES / "03_attention_heads")
plt.show()

# %% [markdown]
# **What this shows.** The heads of one block favour different patches (brighter than the
# uniform $1/T$ in the title), and in the matrices below a vertical stripe is a key token that
# many queries read from; row 0 is the CLS row that the top maps fold into the grid.
#
# <details><summary>Caveats</summary>
#
# The maps show where the CLS token *reads from* in the last block of one image; they are not
# an explanation of the prediction: the values it reads have been mixed over four blocks
# (notebook 07 looks at more images, every block, and rollout).
# </details>

# %% [markdown]
# How peaked are these rows? A row's entropy compared with the uniform $\ln T$ tells us whether
# a head spreads its attention over the whole image or focuses on a few tokens. Measured for
# every block and head (averaged over all $T$ query tokens of this image), trained and fresh:

# %%
def mean_entropy(attentions) -> torch.Tensor:
    return torch.stack([-(w * w.clamp_min(1e-12).log()).sum(-1).mean(-1)[0] for w in attentions])  # (L, h)


with torch.no_grad():
    _, fresh_attentions = model(x_img, return_attention=True)
entropy, fresh_entropy = mean_entropy(attentions), mean_entropy(fresh_attentions)
print(f"mean attention entropy per block (rows) and head (columns), in nats; uniform = ln {T} = {math.log(T):.2f}")
for layer, (row, fresh_row) in enumerate(zip(entropy.tolist(), fresh_entropy.tolist()), start=1):
    print(f"block {layer}: trained " + "  ".join(f"{v:5.2f}" for v in row)
          + "   | fresh " + "  ".join(f"{v:5.2f}" for v in fresh_row))
assert (entropy <= math.log(T) + 1e-4).all()  # no distribution beats uniform
assert fresh_entropy.min() > entropy.min()  # training made some head more peaked

# %% [markdown]
# **What this shows.** The fresh model's heads sit at the uniform entropy; the trained model's
# heads are more peaked, some much more than others.
#
# <details><summary>Caveats</summary>
#
# A low entropy says only that a head is selective, not that what it selects matters for the
# prediction; and the entropies are of one image.
# </details>
#
# ## 6. The price: $O(T^2)$ time and memory
#
# The score matrix has $T \times T$ entries per head, and both matrix products touch all of them:
# $QK^\top$ costs $T \cdot T \cdot d_h$ multiply-adds and so does $AV$. Doubling the sequence length
# should therefore **quadruple** the time and the memory of the weights. We time one head of
# width $d_h = 64$, written with explicit matmuls and with PyTorch's fused kernel, for $T$ from
# 64 up; the memory column is the size of the $T \times T$ float32 weights, from their shape.
# On a CPU we count the thread's CPU time, not the wall clock (this machine is shared), and keep
# the fastest of several runs.

# %%
def fastest_ms(fns: dict, repeats: int) -> dict:
    """{name: fastest time of fn() in ms}: one thread's CPU time on the CPU, wall time on a GPU.
    The functions take turns, and each timed call follows an untimed one (warm caches)."""
    clock = time.perf_counter if DEVICE.type == "cuda" else time.thread_time
    sync = torch.cuda.synchronize if DEVICE.type == "cuda" else (lambda: None)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            sync()
            start = clock()
            fn()
            sync()
            times[name].append(clock() - start)
    return {name: 1000 * min(t) for name, t in times.items()}


def manual_attention(q, k, v):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # (1, 1, T, T)
    return w @ v  # (1, 1, T, d_h)


calls = {}
with torch.inference_mode():
    for n in SEQ_LENS:
        q, k, v = torch.randn(3, 1, 1, n, TIMING_HEAD_DIM, device=DEVICE)  # (1, 1, T, d_h) each
        assert torch.allclose(manual_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-4)
        calls[n, "matmul ms"] = partial(manual_attention, q, k, v)
        calls[n, "fused ms"] = partial(F.scaled_dot_product_attention, q, k, v)
    fastest = fastest_ms(calls, TIMING_REPEATS)
timing_rows = [{"T": n, "weights MiB": n * n * 4 / 2 ** 20, "matmul ms": fastest[n, "matmul ms"],
                "fused ms": fastest[n, "fused ms"]} for n in SEQ_LENS]
TIMED_ON = env.hardware()  # on the CPU: this thread's CPU time, not the wall clock
if DEVICE.type == "cpu":
    TIMED_ON = TIMED_ON.replace(f"{torch.get_num_threads()} threads", "CPU time of 1 thread")
print(f"one head, d_h = {TIMING_HEAD_DIM}, batch 1, measured on {TIMED_ON}:")
print(f"{'T':>6} {'T x T weights (MiB)':>20} {'matmul ms':>10} {'fused ms':>9}")
for r in timing_rows:
    print(f"{r['T']:>6} {r['weights MiB']:>20.3f} {r['matmul ms']:>10.3f} {r['fused ms']:>9.3f}")

# %% [markdown]
# On a log-log plot a power law $t \propto T^k$ is a straight line of slope $k$. We fit it in two
# ranges. For $256 \le T \le 1024$ the matrices fit in a CPU's caches and the slope should be 2.
# At long sequences it often comes out *above* 2 on a CPU: the $T \times T$ matrix no longer fits
# in the caches, and every entry travels to and from main memory. (A GPU at these sizes spends
# most of its time launching kernels, so its slopes come out flatter.)

# %%
ns = np.array([r["T"] for r in timing_rows], dtype=float)
ranges = {"256..1024": (ns >= 256) & (ns <= 1024), ">= 1024": ns >= 1024}
slopes = {}
for key in ["weights MiB", "matmul ms", "fused ms"]:
    values = np.array([r[key] for r in timing_rows])
    for name, mask in ranges.items():
        slopes[key, name] = np.polyfit(np.log(ns[mask]), np.log(values[mask]), 1)[0]
print(f"{'log-log slope':>14} " + " ".join(f"{'T ' + name:>11}" for name in ranges))
for key in ["weights MiB", "matmul ms", "fused ms"]:
    print(f"{key:>14} " + " ".join(f"{slopes[key, name]:>11.2f}" for name in ranges))
assert all(abs(slopes["weights MiB", name] - 2) < 1e-9 for name in ranges)
if DEVICE.type == "cpu":
    # Quadratic (not linear, not cubic) while the matrix fits in cache. The band is wide because a
    # shared machine's neighbours use the same cache: measured here from 1.9 to 2.35.
    assert 1.6 < slopes["matmul ms", "256..1024"] < 2.6
    assert 1.5 < slopes["fused ms", "256..1024"] < 2.6
    assert slopes["matmul ms", ">= 1024"] > 1.6  # and no better than quadratic beyond
else:  # a GPU finishes these small problems in about the time it takes to launch the kernels
    print(f"timed on {DEVICE.type}: at these sizes the times are mostly kernel-launch overhead, "
          "so the time slopes need not be 2 (not checked)")

fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.6))
axes[0].loglog(ns, [r["matmul ms"] for r in timing_rows], "o-", label="matmul + softmax")
axes[0].loglog(ns, [r["fused ms"] for r in timing_rows], "s-", label="F.scaled_dot_product_attention")
anchor = SEQ_LENS.index(256)
ref = timing_rows[anchor]["matmul ms"] * (ns / ns[anchor]) ** 2  # slope 2 through the T = 256 point
axes[0].loglog(ns, ref, "k--", lw=0.8, label="slope 2")
axes[0].set(xlabel="sequence length T", ylabel="ms", title=f"one head, d_h={TIMING_HEAD_DIM}\n{TIMED_ON}")
axes[1].loglog(ns, [r["weights MiB"] for r in timing_rows], "o-", label="T x T float32 weights")
axes[1].set(xlabel="sequence length T", ylabel="MiB per head", title="attention weight memory\n(from shapes)")
for ax in axes:
    ax.legend(fontsize=9)
fig.tight_layout()
figures.save(fig, FIGURES / "03_attention_cost")
plt.show()

# %% [markdown]
# **What this shows.** Memory is exactly quadratic; time is close to quadratic in the middle
# range on a CPU (the fitted slopes are printed above; on a GPU they are not checked).
#
# <details><summary>Caveats</summary>
#
# One machine, one head, batch 1: a GPU has other caches and overheads, and the fused kernel's
# advantage depends on the device.
# </details>
#
# For scale, the same arithmetic for ViT-B/16 at two image sizes:

# %%
for size in (224, 1024):
    cfg = ViTConfig.vit_b_16(image_size=size)
    print(f"ViT-B/16 at {size} px: T = {cfg.seq_len:,} tokens, T^2 = {cfg.seq_len ** 2:,} attention entries "
          f"per head per block ({cfg.seq_len ** 2 * 4 / 2 ** 20:.1f} MiB in float32)")

# %% [markdown]
# At 224 px the matrix is tiny; at 1024 px with the same 16 px patches it is hundreds of times
# larger per head and block, which is why high-resolution ViTs use larger patches, windowed
# attention or fused kernels that never store the matrix.
#
# ## Summary
#
# - Attention is $\operatorname{softmax}(QK^\top/\sqrt{d_h})\,V$: every output is a convex mix of values (rows sum to 1).
# - Without the $1/\sqrt{d_h}$, score variance grows like $d_h$ and the softmax saturates into one-hot rows with
#   vanishing gradients; with it, the statistics do not depend on $d_h$ (measured above). Real $q$ and $k$
#   are not unit-variance: at a std-0.02 initialisation they are much smaller, and training grows them.
# - Heads are a reshape: `b t (h d) -> b h t d`; by-hand, fused QKV, `F.scaled_dot_product_attention` and
#   `vit_core.Attention` agree to $10^{-5}$.
# - Memory grows exactly as $T^2$; measured time has log-log slope about 2 while the matrix fits in
#   cache, and more beyond, on a CPU (both printed above).
#
# Next, notebook 04: the rest of the Transformer block (LayerNorm, MLP, residuals).
#
# ## Exercises
#
# 1. **Fold the scale into the weights.** Multiply the query rows of the fused `qkv` Linear
#    (weight and bias) by $1/\sqrt{d_h}$ and drop the division. Show that the output equals
#    `attention_by_hand`. (So a model *could* learn the scale; the explicit one fixes it at
#    the right value from the start.)
# 2. **Masking a token = removing it.** Pass `F.scaled_dot_product_attention` a boolean
#    `attn_mask` that hides one key from every query. Show that every other token's output is
#    what attention computes on the sequence with that token deleted.
# 3. **Where does the work go?** One attention layer costs $4TD^2$ multiply-adds in its
#    projections and $2T^2D$ in $QK^\top$ and $AV$ (all heads together). Check both terms with
#    `torch.utils.flop_counter.FlopCounterMode` on `vit_core.Attention` (explicit path), and find
#    the $T$ above which the $T^2$ term dominates. Which side are the tiny ViT and ViT-B/16 on?
#
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: softmax((Q / sqrt(d_h)) K^T) V is the same computation with the scale moved into W_Q.
folded = nn.Linear(D, 3 * D).to(DEVICE)
with torch.no_grad():
    folded.load_state_dict(qkv.state_dict())
    folded.weight[:D] /= math.sqrt(head_dim)  # the query rows
    folded.bias[:D] /= math.sqrt(head_dim)


def attention_unscaled(x: torch.Tensor) -> torch.Tensor:
    q, k, v = rearrange(folded(x), "b t (three h d) -> three b h t d", three=3, h=heads)  # (B, h, T, d_h) each
    return W_o(merge((q @ k.transpose(-2, -1)).softmax(dim=-1) @ v))  # no division: it lives in W_Q now


with torch.no_grad():
    folded_diff = max_diff(attention_unscaled(X), by_hand)
print(f"scale folded into W_Q: max |difference| from attention_by_hand = {folded_diff:.1e}")
assert folded_diff < ATOL

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: a masked key gets weight exactly 0, so the other outputs are those of the shorter sequence.
with torch.no_grad():
    q, k, v = rearrange(qkv(X), "b t (three h d) -> three b h t d", three=3, h=heads)  # (B, h, T, d_h) each
    hidden = 5  # the token to hide
    keep = torch.ones(T, dtype=torch.bool, device=DEVICE)
    keep[hidden] = False
    mask = keep.expand(T, T)  # (T, T): row = query, column = key; False = hidden
    masked = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, T, d_h)
    shorter = F.scaled_dot_product_attention(q[:, :, keep], k[:, :, keep], v[:, :, keep])  # (B, h, T-1, d_h)
mask_diff = max_diff(masked[:, :, keep], shorter)
print(f"token {hidden} masked vs deleted: max |difference| over the other tokens = {mask_diff:.1e}")
assert mask_diff < ATOL

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: projections 4 T D^2, attention 2 T^2 D multiply-adds (a FLOP counter counts 2 per multiply-add).
from torch.utils.flop_counter import FlopCounterMode

for name, cfg in [("tiny", config), ("ViT-B/16", ViTConfig.vit_b_16())]:
    layer = Attention(cfg).eval()  # forward_with_weights below: explicit matmuls, which the counter sees
    tokens = torch.randn(1, cfg.seq_len, cfg.dim)  # (1, T, D)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        layer.forward_with_weights(tokens)
    t, dim = cfg.seq_len, cfg.dim
    projections, mixing = 4 * t * dim ** 2, 2 * t ** 2 * dim
    print(f"{name}: T={t}, D={dim}: projections {projections:,}, QK^T and AV {mixing:,} multiply-adds; "
          f"T^2 term dominates above T = 2D = {2 * dim}")
    assert counter.get_total_flops() == 2 * (projections + mixing)
    assert t < 2 * dim  # both models: the projections still cost more than the T^2 part
