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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/04_transformer_block.ipynb)
#
# # 04 · The Transformer encoder block
#
# Attention lets tokens exchange information. The encoder block wraps it with three more
# pieces: LayerNorm, a small per-token MLP, and two residual connections. This notebook builds
# each piece from scratch, proves it equal to `vit_core`, and then measures why the *order* of
# those pieces matters. At vit_core's own small initialisation (std 0.02) pre-norm and post-norm
# start out the same; the difference appears with the original code's Xavier initialisation.
#
# **What you will learn**
# - LayerNorm written out by hand, and why it normalises each token on its own;
# - the MLP with GELU, and how GELU differs from ReLU;
# - the pre-norm residual block and the encoder stack, built inline and checked against
#   `vit_core.Block` and `vit_core.Encoder` with the same weights;
# - pre-norm (ViT) against post-norm (the original Transformer), in equations and in a
#   measurement of activation and gradient norms through a deep stack at initialisation;
# - how the residual stream's statistics change through depth, for the tiny ViT and ViT-B/16
#   at initialisation, on real CIFAR-10 images.
#
# Notation as in notebook 01: tokens $(B, T, D)$, $T = N + 1$, MLP width $D_\text{mlp}$, depth $L$.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %% [markdown]
# Everything here is a float32 comparison or a forward pass at initialisation, so it runs on the
# CPU even where a GPU exists. The knobs are all in the next cell.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from vit_core import Attention, Block, Encoder, MLP, ViT, ViTConfig, from_torchvision
from course import max_diff
from vit_core.data import CIFAR10_MEAN, CIFAR10_STD, load_tensors, source_name, subset
from course import figures

torch.manual_seed(0)
plt.rcParams.update({"font.size": 10})  # with figures at most ~8.6 in wide: >= 9 pt on screen (course.figures)
DATA, DOWNLOAD, FIGURES = here.data, here.downloads, here.figures  # what setup() chose above
CONFIG = ViTConfig.cifar10_tiny()                  # dim 48, 4 heads, MLP 192: the series' tiny ViT
NORM_DEPTH = env.pick(full=24, smoke=12)           # blocks in the pre-norm vs post-norm stacks
NORM_SEEDS = env.pick(full=4, smoke=2)             # random initialisations averaged per curve
NORM_BATCH = 16                                    # random token sequences per measurement
STATS_PER_CLASS = env.pick(full=2, smoke=1)        # CIFAR-10 test images per class, tiny ViT
STATS_VITB_IMAGES = env.pick(full=4, smoke=2)      # of those, how many go through ViT-B/16 at 224 px
TOL = 1e-5                                         # max |diff| allowed between inline and vit_core (float32)
INIT_STD = 0.02                                    # vit_core's (and timm's default) Linear weight std
GELU_TANH_COEFF = 0.044715                         # the cubic coefficient of GELU's tanh approximation


# %% [markdown]
# ## 1 · LayerNorm
#
# For one token $x \in \mathbb{R}^D$, LayerNorm subtracts the token's own mean, divides by its own
# standard deviation, then applies a learned per-channel scale $\gamma$ and shift $\beta$:
#
# $$\mu = \frac{1}{D}\sum_{i=1}^{D} x_i, \qquad
# \sigma^2 = \frac{1}{D}\sum_{i=1}^{D} (x_i - \mu)^2, \qquad
# \mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta .$$
#
# The variance divides by $D$, not $D-1$ (it is the *biased* estimate), and $\epsilon$ keeps a
# constant token from dividing by zero; the original ViT (whose code is written in JAX with the
# layer library Flax, and takes Flax's `LayerNorm` default),
# torchvision and timm use $\epsilon = 10^{-6}$.

# %%
def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1): one mean per token
    var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1): divide by D, not D - 1
    return weight * (x - mean) / torch.sqrt(var + eps) + bias  # (..., D)


reference_norm = nn.LayerNorm(CONFIG.dim, eps=CONFIG.layer_norm_eps)
with torch.no_grad():  # random gamma and beta, so the check covers them too
    reference_norm.weight.normal_()
    reference_norm.bias.normal_()
tokens = 3 * torch.randn(4, CONFIG.seq_len, CONFIG.dim) + 5  # (B, T, D), deliberately not centred
ours = layer_norm(tokens, reference_norm.weight, reference_norm.bias, CONFIG.layer_norm_eps)
with torch.no_grad():
    diff = max_diff(ours, reference_norm(tokens))
    unbiased = reference_norm.weight * (tokens - tokens.mean(-1, keepdim=True)) / torch.sqrt(
        tokens.var(-1, keepdim=True, unbiased=True) + CONFIG.layer_norm_eps) + reference_norm.bias
    diff_unbiased = max_diff(unbiased, reference_norm(tokens))
print(f"inline layer_norm vs nn.LayerNorm:     max |diff| = {diff:.2e}")
print(f"same with the D - 1 variance (a slip): max |diff| = {diff_unbiased:.2e}")
assert diff <= TOL and diff_unbiased > 1e-3

# %% [markdown]
# Two properties follow from the formula. With $\gamma = 1, \beta = 0$ every token comes out with
# mean 0 and standard deviation 1 (up to $\epsilon$). And because the statistics are taken over
# the channels of one token, not over the batch (as BatchNorm does), the result for one image
# does not depend on which other images share its batch.

# %%
plain = layer_norm(tokens, torch.ones(CONFIG.dim), torch.zeros(CONFIG.dim), CONFIG.layer_norm_eps)  # (B, T, D)
token_means = plain.mean(dim=-1)  # (B, T)
token_stds = plain.var(dim=-1, unbiased=False).sqrt()  # (B, T)
print(f"per-token mean: max |mean| = {token_means.abs().max():.1e}")
print(f"per-token std:  min {token_stds.min():.6f}, max {token_stds.max():.6f}")
alone = layer_norm(tokens[:1], torch.ones(CONFIG.dim), torch.zeros(CONFIG.dim), CONFIG.layer_norm_eps)
print(f"image 0 normalised alone vs inside the batch: max |diff| = {max_diff(alone, plain[:1]):.1e}")
assert token_means.abs().max() < 1e-5 and (token_stds - 1).abs().max() < 1e-4
assert torch.equal(alone, plain[:1])

# %% [markdown]
# **What this shows.** The inline formula is `nn.LayerNorm`, and the $D - 1$ variance is a
# measurable mistake; each token leaves with mean 0 and standard deviation 1 whatever its batch.
#
# <details><summary>Caveats</summary>
#
# It does not show that the *next* layer sees unit-variance inputs: $\gamma$, $\beta$ and the
# weights that follow set that (notebook 03 measured it for queries and keys).
# </details>

# %% [markdown]
# The module version holds $\gamma$ and $\beta$ as parameters named `weight` and `bias`, like
# `nn.LayerNorm`, so the two can swap weights.

# %%
class LayerNormInline(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))  # gamma
        self.bias = nn.Parameter(torch.zeros(dim))   # beta
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)


# %% [markdown]
# ## 2 · The MLP and GELU
#
# The MLP's non-linearity is the Gaussian Error Linear Unit. It weights its input by the
# probability that a standard normal variable is smaller, $\Phi(x)$:
#
# $$\mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\left(1 + \operatorname{erf}\frac{x}{\sqrt{2}}\right)
# \;\approx\; \frac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,\bigl(x + c\,x^3\bigr)\right)\right),$$
#
# with the constant $c$ of Hendrycks and Gimpel (2016), printed below. torchvision, timm and
# `vit_core` use the exact erf form (`nn.GELU()`). The original JAX ViT code calls Flax's
# `nn.gelu`, that is `jax.nn.gelu`, whose default is the tanh approximation (`approximate=True`;
# `vit_jax/models_vit.py`, `MlpBlock`), so the published checkpoints were trained with it; the
# two differ by the small amount printed below. Unlike $\mathrm{ReLU}(x) = \max(0, x)$, GELU is
# smooth, lets small negative inputs through a little, and dips slightly below zero.

# %%
def gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + GELU_TANH_COEFF * x ** 3)))


grid = torch.linspace(-4, 4, 2001)
print(f"inline gelu vs F.gelu:                       max |diff| = {max_diff(gelu(grid), F.gelu(grid)):.1e}")
print(f"tanh approximation (c = {GELU_TANH_COEFF}) vs exact GELU on [-4, 4]: max |diff| = "
      f"{max_diff(gelu_tanh(grid), gelu(grid)):.1e}")
lowest = gelu(grid).argmin()
print(f"GELU's minimum: {gelu(grid)[lowest]:.4f} at x = {grid[lowest]:.3f}")
assert max_diff(gelu(grid), F.gelu(grid)) <= TOL
assert max_diff(gelu_tanh(grid), F.gelu(grid, approximate="tanh")) <= TOL

# %%
x = grid.clone().requires_grad_(True)
curves = {"GELU": gelu(x), "ReLU": F.relu(x)}
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(8.6, 3.2))
for name, y in curves.items():
    slope, = torch.autograd.grad(y.sum(), x)  # elementwise functions: d(sum)/dx_i = f'(x_i)
    ax_f.plot(grid, y.detach(), label=name)
    ax_d.plot(grid, slope, label=name)
ax_f.set(title="activation", xlabel="x", ylabel="f(x)")
ax_d.set(title="derivative (autograd)", xlabel="x", ylabel="f'(x)")
for ax in (ax_f, ax_d):
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend()
fig.tight_layout()
figures.save(fig, FIGURES / "04_transformer_block_gelu_vs_relu")
plt.show()

# %% [markdown]
# **What this shows.** GELU is close to ReLU for large $|x|$ and differs near 0, where its
# slope changes smoothly instead of jumping.
#
# <details><summary>Caveats</summary>
#
# The plot says nothing about which trains better; that depends on the model and is not
# measured here.
# </details>
#
# The MLP widens each token from $D$ to $D_\text{mlp}$ channels (in ViT $D_\text{mlp} = 4D$),
# applies GELU, and projects back:
#
# $$\mathrm{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2, \qquad
# W_1 \in \mathbb{R}^{D_\text{mlp} \times D},\; W_2 \in \mathbb{R}^{D \times D_\text{mlp}}.$$
#
# It sees one token at a time: attention is the only place where tokens mix. So permuting the
# tokens permutes the output, and nothing else changes.

# %%
class FeedForward(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.dim, config.mlp_dim)
        self.fc2 = nn.Linear(config.mlp_dim, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(gelu(self.fc1(x)))  # (B, T, D_mlp) inside, (B, T, D) out


reference_mlp = MLP(CONFIG)
our_mlp = FeedForward(CONFIG)
our_mlp.load_state_dict(reference_mlp.state_dict())  # strict: the parameter names must match too
order = torch.randperm(CONFIG.seq_len)
with torch.no_grad():
    diff = max_diff(our_mlp(tokens), reference_mlp(tokens))
    diff_perm = max_diff(our_mlp(tokens[:, order]), our_mlp(tokens)[:, order])
print(f"FeedForward vs vit_core.MLP:            max |diff| = {diff:.2e}")
print(f"MLP(permuted tokens) vs permuted MLP:   max |diff| = {diff_perm:.2e}")
assert diff <= TOL and diff_perm <= TOL

# %% [markdown]
# **What this shows.** `FeedForward` is `vit_core.MLP`, parameter names included, and permuting
# the tokens only permutes its output: the MLP never mixes tokens.

# %% [markdown]
# ## 3 · The pre-norm residual block
#
# A ViT block (Dosovitskiy et al., 2021, eq. 2–3) normalises the input of each sub-layer and adds
# the sub-layer's output back onto the unnormalised stream $z$:
#
# $$z' = z + \mathrm{MSA}\bigl(\mathrm{LN}_1(z)\bigr), \qquad
# z_{\text{out}} = z' + \mathrm{MLP}\bigl(\mathrm{LN}_2(z')\bigr).$$
#
# $z$ is called the *residual stream*: every sub-layer reads a normalised copy of it and writes an
# update into it. The attention is notebook 03's, taken from `vit_core`; LayerNorm and the MLP
# are the inline versions above.

# %%
class PreNormBlock(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.norm1 = LayerNormInline(config.dim, config.layer_norm_eps)
        self.attn = Attention(config)
        self.norm2 = LayerNormInline(config.dim, config.layer_norm_eps)
        self.mlp = FeedForward(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))     # (B, T, D)
        return x + self.mlp(self.norm2(x))   # (B, T, D)


reference_block = Block(CONFIG)
our_block = PreNormBlock(CONFIG)
our_block.load_state_dict(reference_block.state_dict())
with torch.no_grad():
    diff = max_diff(our_block(tokens), reference_block(tokens))
print(f"PreNormBlock vs vit_core.Block: max |diff| = {diff:.2e}")
assert diff <= TOL

# %% [markdown]
# A block maps $(B, T, D)$ to $(B, T, D)$, so blocks stack. Its parameters: two LayerNorms
# ($2 \cdot 2D$), the fused query/key/value projection ($3D^2 + 3D$), the output projection
# ($D^2 + D$) and the MLP ($2 D D_\text{mlp} + D_\text{mlp} + D$), in all
# $4D^2 + 2 D D_\text{mlp} + 9D + D_\text{mlp}$.

# %%
def block_parameters(D: int, D_mlp: int) -> int:
    return 4 * D ** 2 + 2 * D * D_mlp + 9 * D + D_mlp


per_block = block_parameters(CONFIG.dim, CONFIG.mlp_dim)
counted = sum(p.numel() for p in reference_block.parameters())
print(f"parameters per block: formula {per_block:,}, counted {counted:,}")
assert per_block == counted

# %% [markdown]
# The encoder is nothing more than $L$ such blocks applied in turn,
# $z_\ell = \mathrm{Block}_\ell(z_{\ell-1})$ for $\ell = 1, \dots, L$. Nothing in it knows the
# order of the tokens; the positions were added to the tokens before the first block.

# %%
class EncoderInline(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.blocks = nn.ModuleList(PreNormBlock(config) for _ in range(config.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)  # (B, T, D) all the way through
        return x


reference_encoder = Encoder(CONFIG)
our_encoder = EncoderInline(CONFIG)
our_encoder.load_state_dict(reference_encoder.state_dict())
with torch.no_grad():
    diff = max_diff(our_encoder(tokens), reference_encoder(tokens))
print(f"EncoderInline ({CONFIG.depth} blocks) vs vit_core.Encoder: max |diff| = {diff:.2e}")
assert diff <= TOL

# %% [markdown]
# **What this shows.** Built from the inline LayerNorm and MLP and `vit_core`'s attention, the
# block and the stack of blocks compute what `vit_core.Block` and `vit_core.Encoder` compute,
# given the same weights (the parameter names match too, or `load_state_dict` would fail).
# From here on the notebook uses `vit_core.Block` and `vit_core.Encoder`. (Other libraries give
# these parts other names; notebook 11 maps HuggingFace's, torchvision's and timm's onto ours.)
#
# ## 4 · Pre-norm against post-norm
#
# The original Transformer (Vaswani et al., 2017) put LayerNorm *after* the residual addition:
#
# $$\text{post-norm:}\quad z' = \mathrm{LN}_1\bigl(z + \mathrm{MSA}(z)\bigr), \qquad
# z_{\text{out}} = \mathrm{LN}_2\bigl(z' + \mathrm{MLP}(z')\bigr),$$
#
# $$\text{pre-norm:}\quad z' = z + \mathrm{MSA}\bigl(\mathrm{LN}_1(z)\bigr), \qquad
# z_{\text{out}} = z' + \mathrm{MLP}\bigl(\mathrm{LN}_2(z')\bigr).$$
#
# Unrolling pre-norm over $L$ blocks gives a plain sum,
# $z_L = z_0 + \sum_{\ell=1}^{L} F_\ell$ where $F_\ell$ are the two sub-layer updates of block $\ell$,
# so $\partial z_L / \partial z_\ell = I + \sum_{k>\ell} \partial F_k / \partial z_\ell$: there is
# an identity path from the loss to every block. In post-norm, $2L$ LayerNorms sit *on* that path.
# Xiong et al. (2020) showed that at initialisation the post-norm Transformer's parameter
# gradients are largest near the output, which is why it needs a learning-rate warm-up
# (notebook 06), while pre-norm's are well behaved. The price of pre-norm: nothing normalises the
# stream itself, so it can grow with depth, and the model needs one last LayerNorm before the head
# (ViT's `norm`).
#
# The post-norm block reuses the same sub-layers, wired differently: it is `vit_core.Block`
# (same LayerNorms, attention and MLP, same parameter names) with another `forward`.

# %%
class PostNormBlock(Block):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x))    # (B, T, D): the stream itself is normalised
        return self.norm2(x + self.mlp(x))  # (B, T, D)


# %% [markdown]
# **The experiment.** Stack `NORM_DEPTH` blocks of each kind at initialisation, feed random
# token sequences with unit variance, read the first token through a final LayerNorm (pre-norm
# only: post-norm's output is already normalised) and a linear head, and take the cross-entropy
# against random labels. Measure, block by block, (a) the average per-token norm
# $\lVert z_\ell \rVert_2$ of the residual stream and (b) the gradient norm of all the block's
# parameters. Two initialisations of the Linear weights (biases zero):
# - **vit_core's**: truncated normal with standard deviation `INIT_STD` (printed below), timm's
#   default;
# - **Xavier-uniform**, with variance $2 / (\text{fan\_in} + \text{fan\_out})$: what the original
#   JAX ViT code uses for its attention and MLP kernels (`vit_jax/models_vit.py`).

# %%
def init_linears(module: nn.Module, scheme: str) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if scheme == "vit_core (std 0.02)":
                nn.init.trunc_normal_(layer.weight, std=INIT_STD)
            else:
                nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def measure_stack(kind: str, scheme: str, depth: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block stream norms and parameter-gradient norms, both of shape (depth,)."""
    torch.manual_seed(seed)
    config = ViTConfig.cifar10_tiny(depth=depth)
    make = Block if kind == "pre-norm" else PostNormBlock
    blocks = nn.ModuleList(make(config) for _ in range(depth))
    final_norm = nn.LayerNorm(config.dim) if kind == "pre-norm" else nn.Identity()
    head = nn.Linear(config.dim, config.num_classes)
    init_linears(blocks, scheme)
    init_linears(head, scheme)
    x = torch.randn(NORM_BATCH, config.seq_len, config.dim)  # (B, T, D), unit variance
    labels = torch.randint(0, config.num_classes, (NORM_BATCH,))
    stream_norms = []
    for block in blocks:
        x = block(x)  # (B, T, D)
        stream_norms.append(x.detach().norm(dim=-1).mean())
    F.cross_entropy(head(final_norm(x)[:, 0]), labels).backward()
    grad_norms = [torch.cat([p.grad.flatten() for p in b.parameters()]).norm() for b in blocks]
    return torch.stack(stream_norms), torch.stack(grad_norms)


# %%
SCHEMES = ("vit_core (std 0.02)", "Xavier-uniform")
KINDS = ("pre-norm", "post-norm")
results = {}
for scheme in SCHEMES:
    for kind in KINDS:
        runs = [measure_stack(kind, scheme, NORM_DEPTH, seed) for seed in range(NORM_SEEDS)]
        results[scheme, kind] = tuple(torch.stack(r).mean(dim=0) for r in zip(*runs))  # averaged over seeds

print(f"{NORM_DEPTH} blocks, D = {CONFIG.dim}, mean of {NORM_SEEDS} initialisations; init std {INIT_STD}")
print(f"{'init':<22}{'kind':<11}{'|z| block 1':>12}{'|z| last':>10}{'grad block 1':>14}{'grad last':>11}{'last/first':>12}")
for (scheme, kind), (norms, grads) in results.items():
    print(f"{scheme:<22}{kind:<11}{norms[0]:>12.2f}{norms[-1]:>10.2f}"
          f"{grads[0]:>14.3e}{grads[-1]:>11.3e}{grads[-1] / grads[0]:>12.2f}")

# %%
def coincide(a: torch.Tensor, b: torch.Tensor, rtol: float = 0.02) -> bool:
    """True when two curves lie within rtol of each other at every block (one hides the other)."""
    return bool(((a - b).abs() / b.abs()).max() < rtol)


STYLES = {"pre-norm": dict(ls="-", marker="o", ms=4),  # solid, filled markers, drawn first
          "post-norm": dict(ls="--", marker="o", ms=7, mfc="none")}  # dashed, hollow: visible on top
fig, axes = plt.subplots(2, 2, figsize=(8.6, 6.4), sharex=True, sharey="col")
layers = torch.arange(1, NORM_DEPTH + 1)
for row, scheme in enumerate(SCHEMES):
    for kind in KINDS:
        norms, grads = results[scheme, kind]
        axes[row, 0].plot(layers, norms, label=kind, **STYLES[kind])
        axes[row, 1].plot(layers, grads / grads[0], label=kind, **STYLES[kind])
    (pre_norms, pre_grads), (post_norms, post_grads) = (results[scheme, kind] for kind in KINDS)
    for ax, what, same in [(axes[row, 0], "stream norms", coincide(pre_norms, post_norms)),
                           (axes[row, 1], "gradients / block 1's",
                            coincide(pre_grads / pre_grads[0], post_grads / post_grads[0]))]:
        if same:
            ax.plot([], [], " ", label="(the two curves coincide)")
            print(f"{scheme}, {what}: pre-norm and post-norm within 2% at every block (the curves coincide)")
    axes[row, 0].axhline(math.sqrt(CONFIG.dim), color="grey", ls=":", lw=1, label="√D (input scale)")
    axes[row, 1].axhline(1, color="grey", ls=":", lw=1)
    axes[row, 0].set(ylabel=f"{scheme}\nmean per-token norm of z")
    axes[row, 1].set(ylabel="gradient norm / block 1's", yscale="log")
axes[0, 0].set_ylim(0, None)  # from 0: a flat line must look flat
axes[0, 1].set_ylim(0.1, 10)  # one decade either side of block 1
axes[0, 0].set_title("residual stream after block l")
axes[0, 1].set_title("gradient of block l's parameters")
for ax in axes.flat:
    ax.legend(fontsize=9)
for ax in axes[1]:
    ax.set_xlabel("block l")
fig.suptitle(f"pre-norm vs post-norm at initialisation\n({NORM_DEPTH} blocks, random unit-variance tokens)")
fig.tight_layout()
figures.save(fig, FIGURES / "04_transformer_block_prenorm_vs_postnorm")
plt.show()

# %% [markdown]
# The right column shows each block's gradient relative to block 1's (absolute values are in
# the table above); post-norm is dashed with hollow markers, so it stays visible where it lies on
# top of pre-norm. How much does one Linear layer scale a unit-variance input at
# initialisation? Its output has standard deviation $\sigma\sqrt{\text{fan\_in}}$:

# %%
for fan_in in (CONFIG.dim, CONFIG.mlp_dim, 768, 3072):
    print(f"fan-in {fan_in:>4}: a std-{INIT_STD} Linear scales a unit-variance input by {INIT_STD * math.sqrt(fan_in):.2f}")

# %% [markdown]
# **What this shows.** With Xavier weights, pre-norm's gradients come out *smaller* than
# post-norm's at every block and fall towards the output, while post-norm's rise (the ratios are
# printed below); with vit_core's std-0.02 weights at width 48 the two stacks coincide, because
# every Linear starts out shrinking its input (the factor is printed above), so both begin close
# to the identity.
#
# **Why smaller is not worse.** The pre-norm stream grows with depth, but each sub-layer reads a
# normalised copy of it, so what a branch adds stays bounded; the final LayerNorm divides by the
# grown stream's size, and every block's gradient is scaled down with it (a later block's update
# is also a smaller part of a larger sum). Post-norm renormalises after every sub-layer: its
# tokens keep norm $\sqrt{D}$, the stream cannot grow, and its gradients are largest near the
# output, the uneven pattern Xiong et al. tie to the need for a learning-rate warm-up.
#
# <details><summary>Caveats</summary>
#
# Random tokens and random labels, step 0 only, a few seeds: this is about the *start* of
# training; it does not show which stack trains to a better model. And std 0.02 is small only
# next to a narrow layer's fan-in (section 5 looks at width 768).
# </details>

# %%
for (scheme, kind), (norms, grads) in results.items():
    if kind == "post-norm":
        assert (norms / math.sqrt(CONFIG.dim) - 1).abs().max() < 1e-3, "post-norm tokens have norm sqrt(D)"
small_pre, small_post = results[SCHEMES[0], "pre-norm"], results[SCHEMES[0], "post-norm"]
assert small_pre[0][-1] / small_pre[0][0] < 1.05, "small init: the pre-norm stream barely grows"
for norms, grads in (small_pre, small_post):
    assert grads.max() / grads.min() < 1.3, "small init: gradients are flat through depth"
xavier_pre, xavier_post = results[SCHEMES[1], "pre-norm"], results[SCHEMES[1], "post-norm"]
assert xavier_pre[0][-1] / xavier_pre[0][0] > 1.5, "Xavier: the pre-norm stream grows with depth"
assert xavier_pre[1][-1] < xavier_pre[1][0], "Xavier: pre-norm gradients shrink towards the output"
assert xavier_post[1][-1] > xavier_post[1][0], "Xavier: post-norm gradients grow towards the output"
ratio = xavier_pre[1] / xavier_post[1]  # (depth,): pre-norm's gradient over post-norm's, block by block
assert ratio.max() < 1, "Xavier: pre-norm's gradients are smaller than post-norm's at every block"
print(f"Xavier: pre-norm's gradient is {ratio.min():.2f} to {ratio.max():.2f} times post-norm's, block by block; "
      f"its stream grows {xavier_pre[0][-1] / xavier_pre[0][0]:.1f}x, while post-norm's tokens keep norm "
      f"sqrt(D) = {math.sqrt(CONFIG.dim):.2f}")

# %% [markdown]
# ## 5 · The residual stream through depth
#
# Finally, real images. Forward hooks record the residual stream after the embedding (position 0)
# and after every block, without touching the model's code. For each we report the mean and the
# standard deviation over all entries and the mean per-token L2 norm. Three models, all at
# initialisation (untrained):
# - the tiny ViT on 32 px CIFAR-10 images;
# - ViT-B/16 with vit_core's initialisation, on the same images upsampled to 224 px;
# - ViT-B/16 with torchvision's initialisation (`vit_b_16()` with no weights, converted by
#   `from_torchvision`): same architecture, different init scheme.

# %%
images, labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)
images, labels = subset(images, labels, per_class=STATS_PER_CLASS, seed=0)
DATASET = source_name("cifar10", DATA)
mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
pixels = (images.float() / 255 - mean) / std  # (B, 3, 32, 32), normalised per channel
pixels_224 = F.interpolate(pixels[:STATS_VITB_IMAGES], size=224, mode="bilinear", align_corners=False)
print(f"{DATASET}: {len(labels)} test images at 32 px; {len(pixels_224)} of them upsampled to 224 px for ViT-B/16")


# %%
@torch.no_grad()
def stream_statistics(model: ViT, images: torch.Tensor) -> dict[str, list[float]]:
    """Mean, std and mean per-token norm of the residual stream after the embedding and every block."""
    captured = []
    record = lambda module, inputs, output: captured.append(output)  # noqa: E731
    hooks = [model.pos_drop.register_forward_hook(record)]  # output of embed(): (B, T, D)
    hooks += [block.register_forward_hook(record) for block in model.blocks]  # each block: (B, T, D)
    try:
        model.eval()(images)
    finally:
        for hook in hooks:
            hook.remove()
    return {"mean": [z.mean().item() for z in captured],
            "std": [z.std().item() for z in captured],
            "token norm": [z.norm(dim=-1).mean().item() for z in captured]}


torch.manual_seed(0)
tiny_model = ViT(CONFIG)
vit_b = ViT(ViTConfig.vit_b_16())
vit_b_tv_init = from_torchvision(torchvision.models.vit_b_16())  # random weights: torchvision's init
stats = {
    f"tiny ViT ({CONFIG.depth} blocks, dim {CONFIG.dim})": stream_statistics(tiny_model, pixels),
    "ViT-B/16, vit_core init": stream_statistics(vit_b, pixels_224),
    "ViT-B/16, torchvision init": stream_statistics(vit_b_tv_init, pixels_224),
}
weight_std = lambda model, name: model.blocks[0].get_submodule(name).weight.std().item()  # noqa: E731
print("ViT-B/16 block 1, weight std, vit_core / torchvision init: "
      + ", ".join(f"{name} {weight_std(vit_b, name):.4f} / {weight_std(vit_b_tv_init, name):.4f}"
                  for name in ("attn.qkv", "mlp.fc1")))
del vit_b, vit_b_tv_init  # 86 M parameters each

# %%
print(f"residual stream at initialisation ({DATASET}); position 0 = after the embedding")
print(f"{'model':<32}{'pos':>4}{'mean':>10}{'std':>9}{'token norm':>12}")
for name, s in stats.items():
    for position in sorted({0, len(s["std"]) // 2, len(s["std"]) - 1}):
        print(f"{name:<32}{position:>4}{s['mean'][position]:>10.4f}{s['std'][position]:>9.4f}"
              f"{s['token norm'][position]:>12.2f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(8.6, 3.4))
for name, st in stats.items():
    for ax, key in zip(axes, ("mean", "std", "token norm")):
        ax.plot(range(len(st[key])), st[key], marker="o", ms=3, label=name)
for ax, key in zip(axes, ("mean", "std", "token norm")):
    ax.set(title=key, xlabel="after block l (0: embedding)")
axes[0].axhline(0, color="grey", lw=0.5)
axes[0].set_ylim(-1, 1)  # on the scale of the std: the means are close to 0
axes[1].set_ylim(0, None)
axes[2].set_ylim(0, None)
fig.suptitle(f"residual stream at initialisation, {DATASET} test images\n(ViT-B/16: upsampled to 224 px)")
fig.tight_layout()
fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=2, bbox_to_anchor=(0.5, 0.0))
figures.save(fig, FIGURES / "04_transformer_block_stream_statistics")
plt.show()

# %% [markdown]
# **What this shows** (checked below). Every stream starts with a standard deviation near 1;
# the tiny ViT's blocks then barely change it, while both ViT-B/16 streams grow block after
# block, faster with torchvision's larger initial weights (their scale is printed above).
# So "small init" depends on the width: std 0.02 is small next to fan-in 48, not next to 768 or
# 3072 (the factors printed in section 4), and at initialisation nothing normalises a pre-norm
# stream before the final LayerNorm.
#
# <details><summary>Caveats</summary>
#
# Untrained models, a handful of images, and for ViT-B/16 upsampled 32 px images rather than
# real 224 px photographs. Trained models look different again; notebook 07 looks inside one.
# </details>

# %%
growth = {name: s["token norm"][-1] / s["token norm"][0] for name, s in stats.items()}
for name, g in growth.items():
    print(f"{name:<32} token norm after the last block / after the embedding = {g:.3f}")
tiny_name, vitb_name, tv_name = stats
assert all(0.5 < s["std"][0] < 2 for s in stats.values()), "the embedding keeps the pixels' unit scale"
assert abs(growth[tiny_name] - 1) < 0.05, "tiny ViT: the blocks barely change the stream at step 0"
for name in (vitb_name, tv_name):
    norms = stats[name]["token norm"]
    assert growth[name] > 1.3 and all(b > a for a, b in zip(norms, norms[1:])), f"{name}: the stream grows"
assert growth[tv_name] > growth[vitb_name], "torchvision's init grows the stream faster"

# %% [markdown]
# ## Summary
#
# - LayerNorm normalises each token over its own $D$ channels (biased variance, $\epsilon = 10^{-6}$),
#   then scales and shifts it; it does not look at the batch.
# - The MLP acts on every token separately: $D \to D_\text{mlp} = 4D \to D$ with GELU in between
#   (exact in torchvision, timm and `vit_core`; the tanh approximation in the original JAX code).
# - A ViT block is pre-norm: $z + \mathrm{MSA}(\mathrm{LN}(z))$, then $z + \mathrm{MLP}(\mathrm{LN}(z))$,
#   leaving an identity path through the whole stack; the model needs a final LayerNorm.
# - Post-norm normalises the stream itself; at initialisation (Xavier) its gradients grow towards
#   the output. A pre-norm stream grows with depth while each branch adds a bounded update, so
#   its gradients are smaller, not worse. How much the stream grows depends on the init
#   *relative to the width*: std 0.02 is tiny at width 48 and not at width 768.
#
# Next, notebook 05 puts the patch embedding, positions, CLS token, encoder, final norm and head
# together into the full model and loads torchvision's and timm's weights into it.

# %% [markdown]
# ## Exercises
#
# 1. **RMSNorm.** Many recent Transformers replace LayerNorm by RMSNorm, which skips the mean:
#    $\mathrm{RMS}(x) = \gamma \odot x / \sqrt{\tfrac{1}{D}\sum_i x_i^2 + \epsilon}$. Write it,
#    check it against `torch.nn.RMSNorm`, and show that on tokens that already have mean 0 it
#    equals LayerNorm without $\beta$.
# 2. **LayerNorm forgets the scale.** Show that $\mathrm{LN}(a x) = \mathrm{LN}(x)$ for $a > 0$,
#    as long as the scaled token's variance stays well above $\epsilon$ (try a tiny $a$ too).
#    What does that mean for a post-norm stream, and for the size of the update a pre-norm block
#    adds?
# 3. **Count ViT-B/16's encoder.** With `block_parameters`, predict the parameter count of
#    ViT-B/16's encoder (its $L$ blocks; the final LayerNorm belongs to `ViT`, not `Encoder`) and
#    check it against `vit_core.Encoder(ViTConfig.vit_b_16())` built on the `meta` device.
#
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: RMSNorm divides by the root mean square; with a zero mean that is the standard deviation.
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., D)


reference_rms = nn.RMSNorm(CONFIG.dim, eps=CONFIG.layer_norm_eps)
with torch.no_grad():
    reference_rms.weight.normal_()
    rms_diff = max_diff(rms_norm(tokens, reference_rms.weight, CONFIG.layer_norm_eps), reference_rms(tokens))
    centred = tokens - tokens.mean(dim=-1, keepdim=True)  # (B, T, D), every token mean 0
    ln_diff = max_diff(rms_norm(centred, reference_rms.weight, CONFIG.layer_norm_eps),
                       layer_norm(centred, reference_rms.weight, torch.zeros(CONFIG.dim), CONFIG.layer_norm_eps))
print(f"rms_norm vs nn.RMSNorm: {rms_diff:.1e}; on centred tokens, RMSNorm vs LayerNorm without beta: {ln_diff:.1e}")
assert rms_diff <= TOL and ln_diff <= TOL

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: mean and standard deviation both scale with a, so (x - mean) / std does not change,
# until a token's variance comes near epsilon (these tokens have standard deviation about 3).
scale_diffs = {a: max_diff(layer_norm(a * tokens, torch.ones(CONFIG.dim), torch.zeros(CONFIG.dim), CONFIG.layer_norm_eps),
                           plain) for a in (10.0, 1000.0, 0.001)}
print("max |LN(a x) - LN(x)|: " + ", ".join(f"a = {a:g}: {d:.1e}" for a, d in scale_diffs.items()))
assert scale_diffs[10.0] <= TOL and scale_diffs[1000.0] <= TOL
assert scale_diffs[0.001] > 100 * TOL  # variance ~1e-5, next to eps = 1e-6: epsilon is no longer negligible
# So a post-norm stream is rescaled to norm sqrt(D) after every sub-layer, whatever it was; and a
# pre-norm sub-layer sees the same normalised input however large the stream has grown, so its
# update does not grow with the stream: later blocks change a large stream relatively less.

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: L identical blocks.
vit_b_config = ViTConfig.vit_b_16()
predicted = vit_b_config.depth * block_parameters(vit_b_config.dim, vit_b_config.mlp_dim)
with torch.device("meta"):
    counted = sum(t.numel() for t in Encoder(vit_b_config).parameters())
print(f"ViT-B/16 encoder: predicted {predicted:,}, counted {counted:,} parameters")
assert predicted == counted
