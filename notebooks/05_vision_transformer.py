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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/05_vision_transformer.ipynb)
#
# # 05 · The full Vision Transformer
#
# Notebooks 01–04 built the parts: patches and their embedding, the CLS token and position
# embeddings, multi-head attention, and the pre-norm encoder block. This notebook puts them
# together into the whole model, counts where its parameters and compute go, proves that the
# encoder alone is blind to token order, and loads other libraries' weights into it.
#
# **What you will learn**
# - the ViT forward pass as four equations, and a complete `TinyViT` in about twenty lines that
#   gives *identical* logits to `vit_core.ViT`;
# - where the parameters and the multiply-adds live, for the tiny CIFAR model and ViT-B/16,
#   checked against PyTorch's FLOP counter and torchvision's published numbers;
# - why the encoder without positions only sees a set of tokens (the proof notebook 02 promised);
# - how `from_torchvision` and `from_timm` turn those libraries' ViT-B/16 into a `vit_core.ViT`
#   with the same logits.
#
# Notation as in notebook 01: image side $H$, patch side $P$, $N = (H/P)^2$ patches, $T = N + 1$
# tokens of width $D$, $h$ heads of width $d_h$, MLP width $D_\text{mlp}$, depth $L$.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from vit_core import Block, PatchEmbedding, ViT, ViTConfig, from_timm, from_torchvision
from course import max_diff
from vit_core.data import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD,
                           load_tensors, source_name, subset)
from course import figures
from course import runs as course_runs

torch.manual_seed(0)
plt.rcParams.update({"font.size": 10})  # with figures at most ~8.6 in wide: >= 9 pt on screen (course.figures)
DATA, DOWNLOAD, FIGURES = here.data, here.downloads, here.figures  # what setup() chose above
TINY_CONFIG = ViTConfig.cifar10_tiny()   # 32 px, 4 px patches, dim 48, 4 blocks, 4 heads, MLP 192
VIT_B_CONFIG = ViTConfig.vit_b_16()      # 224 px, 16 px patches, dim 768, 12 blocks, 12 heads, MLP 3072
BIG_IMAGES = env.pick(full=2, smoke=1)   # CIFAR-10 images upsampled to 224 px for each ViT-B/16 check
LOGIT_TOL = 1e-4                         # max |logit diff| allowed between two libraries (float32)


# %% [markdown]
# ## 1 · The model in four equations
#
# An image is cut into $N = (H/P)^2$ patches $x_p^i \in \mathbb{R}^{P^2 C}$. With the patch
# embedding $E \in \mathbb{R}^{P^2 C \times D}$, a learned CLS token $x_\text{class}$, position
# embeddings $E_\text{pos} \in \mathbb{R}^{T \times D}$ ($T = N + 1$) and $L$ blocks
# (Dosovitskiy et al., 2021, eq. 1–4):
#
# $$z_0 = [\,x_\text{class};\; x_p^1 E;\; x_p^2 E;\; \dots;\; x_p^N E\,] + E_\text{pos}$$
# $$z'_\ell = z_{\ell-1} + \mathrm{MSA}\bigl(\mathrm{LN}(z_{\ell-1})\bigr), \qquad \ell = 1 \dots L$$
# $$z_\ell = z'_\ell + \mathrm{MLP}\bigl(\mathrm{LN}(z'_\ell)\bigr), \qquad \ell = 1 \dots L$$
# $$y = \mathrm{LN}(z_L^0), \qquad \text{logits} = y\,W_{\text{head}} + b_{\text{head}}$$
#
# $z_L^0$ is the CLS token's row after the last block: the only token the head reads. Written
# with `vit_core`'s `PatchEmbedding` and `Block` (the pieces built and checked in the earlier
# notebooks), the whole model is:

# %%
class TinyViT(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.patch_embed = PatchEmbedding(config)                                # E
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))             # x_class
        self.pos_embed = nn.Parameter(torch.zeros(1, config.seq_len, config.dim))  # E_pos
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.dim, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)  # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D): one copy per image
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, T, D) = z_0
        for block in self.blocks:
            x = block(x)  # (B, T, D)
        return self.head(self.norm(x)[:, 0])  # (B, num_classes): read out the CLS token


# %% [markdown]
# `vit_core.ViT` holds the same parameters under the same names, except that its blocks live in
# `encoder.blocks`. Copy its weights into a `TinyViT` and feed both ten CIFAR-10 test images (one
# per class): the logits must be identical, bit for bit.

# %%
images, labels = subset(*load_tensors("cifar10", "test", DATA, download=DOWNLOAD), per_class=1, seed=0)
DATASET = source_name("cifar10", DATA)
pixels = (images.float() / 255 - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
print(f"{DATASET}: {tuple(pixels.shape)} normalised test images, classes {[CIFAR10_CLASSES[i] for i in labels]}")

reference = ViT(TINY_CONFIG).eval()  # the default forward: every token through every block, as in the equations
tiny = TinyViT(TINY_CONFIG).eval()
tiny.load_state_dict({k.removeprefix("encoder."): v for k, v in reference.state_dict().items()})  # strict
with torch.no_grad():
    tiny_logits, reference_logits = tiny(pixels), reference(pixels)
print(f"TinyViT vs vit_core.ViT: logits {tuple(tiny_logits.shape)}, max |diff| = {max_diff(tiny_logits, reference_logits):.1e}")
assert torch.equal(tiny_logits, reference_logits)

# %% [markdown]
# **What this shows.** Twenty lines are the whole model: same parameters, same names (but the
# `encoder.` prefix), bit-identical logits (the model is untrained, so the logits mean nothing yet).
#
# The shapes along the way, for this batch of $B = 10$ images ($N = 64$ patches, $T = 65$ tokens
# of width $D = 48$):

# %%
with torch.no_grad():
    steps = [("images", pixels)]
    steps.append(("patch embedding", tiny.patch_embed(pixels)))
    z = torch.cat([tiny.cls_token.expand(len(pixels), -1, -1), steps[-1][1]], dim=1) + tiny.pos_embed
    steps.append(("+ CLS token, + positions (z_0)", z))
    for i, block in enumerate(tiny.blocks):
        z = block(z)  # (B, T, D)
        steps.append((f"after block {i + 1}", z))
    steps.append(("final LayerNorm, CLS row", tiny.norm(z)[:, 0]))
    steps.append(("head: logits", tiny.head(steps[-1][1])))
for name, tensor in steps:
    print(f"{name:<32}{str(tuple(tensor.shape)):>18}")
assert torch.equal(steps[-1][1], tiny_logits)

# %% [markdown]
# From here on, `vit_core.ViT`.
#
# ## 2 · Where the parameters and the compute go
#
# With $K$ classes, every component's parameter count and its multiply-adds (MACs) per image
# follow from the shapes of its matrix products:
#
# | component | parameters | multiply-adds per image |
# | --- | --- | --- |
# | patch embedding | $P^2 C D + D$ | $N \cdot P^2 C D$ |
# | positions + CLS | $T D + D$ | 0 (additions only) |
# | attention: $q, k, v$ and output projections | $L\,(4D^2 + 4D)$ | $L \cdot 4 T D^2$ |
# | attention: $QK^\top$ and weights $\times V$ | 0 | $L \cdot 2 T^2 D$ |
# | MLP | $L\,(2 D D_\text{mlp} + D_\text{mlp} + D)$ | $L \cdot 2 T D D_\text{mlp}$ |
# | LayerNorms ($2L + 1$) | $(2L + 1) \cdot 2D$ | 0 (element-wise, not counted) |
# | head (CLS token only) | $D K + K$ | $D K$ |
#
# A multiply-add is 2 FLOPs. Softmax, GELU, LayerNorm and the residual additions are element-wise,
# small next to the matrix products, and left out as most published FLOP counts do.

# %%
def component_costs(c: ViTConfig) -> dict[str, tuple[int, int]]:
    """{component: (parameters, multiply-adds per image)} from the config alone."""
    D, D_mlp, L, K, T, N = c.dim, c.mlp_dim, c.depth, c.num_classes, c.seq_len, c.num_patches
    patch_in = c.patch_size ** 2 * c.in_channels  # P^2 C values per flattened patch
    qkv_bias = 3 * D if c.qkv_bias else 0
    return {
        "patch embedding": (patch_in * D + D, N * patch_in * D),
        "positions + CLS": (T * D + D, 0),
        "attention projections": (L * (4 * D * D + qkv_bias + D), L * 4 * T * D * D),
        "attention QK^T and AV": (0, L * 2 * T * T * D),
        "MLP": (L * (2 * D * D_mlp + D_mlp + D), L * 2 * T * D * D_mlp),
        "LayerNorms": ((2 * L + 1) * 2 * D, 0),
        "head": (D * K + K, D * K),
    }


# %% [markdown]
# Two independent checks. **Parameters**: build the model on PyTorch's `meta` device (shapes
# only, no memory) and count its named parameters per component. **Multiply-adds**: run one
# image under `torch.utils.flop_counter.FlopCounterMode`, which records the FLOPs of every matrix
# product per module, and halve them.

# %%
def component_of(parameter_name: str) -> str:
    if parameter_name.startswith("patch_embed."):
        return "patch embedding"
    if parameter_name in ("cls_token", "pos_embed"):
        return "positions + CLS"
    if ".attn." in parameter_name:
        return "attention projections"
    if ".mlp." in parameter_name:
        return "MLP"
    if parameter_name.startswith("head."):
        return "head"
    assert "norm" in parameter_name, parameter_name
    return "LayerNorms"


def measured_costs(config: ViTConfig) -> dict[str, tuple[int, int]]:
    """The same table, counted on a model built on the meta device."""
    with torch.device("meta"):
        model = ViT(config)  # the equations as written: every token through every block
    params = dict.fromkeys(component_costs(config), 0)
    for name, p in model.named_parameters():
        params[component_of(name)] += p.numel()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, config.in_channels, config.image_size, config.image_size, device="meta"))
    flops = {name: sum(by_op.values()) for name, by_op in counter.get_flop_counts().items()}  # per module
    blocks = [f"ViT.encoder.blocks.{i}" for i in range(config.depth)]
    projections = sum(flops[f"{b}.attn.qkv"] + flops[f"{b}.attn.proj"] for b in blocks)
    macs = {"patch embedding": flops["ViT.patch_embed"], "positions + CLS": 0,
            "attention projections": projections,
            "attention QK^T and AV": sum(flops[f"{b}.attn"] for b in blocks) - projections,
            "MLP": sum(flops[f"{b}.mlp"] for b in blocks), "LayerNorms": 0, "head": flops["ViT.head"]}
    assert sum(macs.values()) == counter.get_total_flops(), "every counted FLOP is in some component"
    return {name: (params[name], macs[name] // 2) for name in params}


# %%
def print_costs(title: str, config: ViTConfig) -> dict[str, tuple[int, int]]:
    costs, measured = component_costs(config), measured_costs(config)
    total_params = sum(p for p, _ in costs.values())
    total_macs = sum(m for _, m in costs.values())
    print(f"{title}: H = {config.image_size} px, P = {config.patch_size}, T = {config.seq_len} tokens, "
          f"D = {config.dim}, L = {config.depth}, D_mlp = {config.mlp_dim}, K = {config.num_classes}")
    print(f"{'component':<24}{'parameters':>14}{'share':>8}{'MACs / image':>17}{'share':>8}  matches counter")
    for name, (params, macs) in costs.items():
        print(f"{name:<24}{params:>14,}{params / total_params:>8.1%}{macs:>17,}{macs / total_macs:>8.1%}"
              f"  {'yes' if measured[name] == (params, macs) else 'NO'}")
    print(f"{'total':<24}{total_params:>14,}{'':>8}{total_macs:>17,}  = {total_macs / 1e9:.4f} GMACs "
          f"= {2 * total_macs / 1e9:.3f} GFLOPs\n")
    assert measured == costs, "formula and counter disagree"
    return costs


tiny_costs = print_costs("tiny CIFAR model", TINY_CONFIG)
vit_b_costs = print_costs("ViT-B/16", VIT_B_CONFIG)

# %% [markdown]
# **What this shows.** The formulas and PyTorch's FLOP counter agree on every component of both
# models ("matches counter"). A third check, against torchvision's published numbers for
# `vit_b_16` (metadata shipped with torchvision, nothing downloaded; `_ops` is in billions of
# multiply-adds):

# %%
tv_meta = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.meta
with torch.device("meta"):
    tv_params = sum(p.numel() for p in torchvision.models.vit_b_16().parameters())
our_params = sum(p for p, _ in vit_b_costs.values())
our_gmacs = sum(m for _, m in vit_b_costs.values()) / 1e9
print(f"ViT-B/16 parameters: formula {our_params:,} | torchvision model {tv_params:,} | "
      f"torchvision metadata {tv_meta['num_params']:,}")
print(f"ViT-B/16 compute:    formula {our_gmacs:.3f} GMACs | torchvision metadata {tv_meta['_ops']} (rounded)")
assert our_params == tv_params == tv_meta["num_params"] == 86_567_656
assert abs(our_gmacs - tv_meta["_ops"]) < 0.001

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.8), sharey=True)
names = list(tiny_costs)
for ax, (title, costs) in zip(axes, [("tiny CIFAR model", tiny_costs), ("ViT-B/16", vit_b_costs)]):
    params = torch.tensor([p for p, _ in costs.values()], dtype=torch.float64)
    macs = torch.tensor([m for _, m in costs.values()], dtype=torch.float64)
    rows = torch.arange(len(names))
    ax.barh(rows - 0.2, 100 * params / params.sum(), height=0.4, label="parameters")
    ax.barh(rows + 0.2, 100 * macs / macs.sum(), height=0.4, label="multiply-adds")
    ax.set(title=f"{title}\n{params.sum().item() / 1e6:.2f} M params, {macs.sum().item() / 1e9:.3f} GMACs",
           xlabel="share of the total (%)", xlim=(0, 100))
axes[0].set_yticks(range(len(names)), names)
axes[0].invert_yaxis()
axes[1].legend(fontsize=9)
fig.tight_layout()
figures.save(fig, FIGURES / "05_vision_transformer_costs")
plt.show()

# %% [markdown]
# **What this shows.** In both models the MLPs hold about two thirds of the parameters and the
# attention projections most of the rest. The compute splits differently: the one component
# without parameters, $QK^\top$ and $AV$, takes a visible share of the tiny ViT's multiply-adds
# and a small one of ViT-B/16's.
#
# <details><summary>Caveats</summary>
#
# The bars are shares, not sizes (the totals, in the titles, differ by orders of magnitude), and
# they count multiply-adds, not seconds.
# </details>
#
# Why the attention share differs: per block, the projections and the MLP cost
# $4TD^2 + 2TDD_\text{mlp}$ multiply-adds and $QK^\top$ with $AV$ cost $2T^2D$, a ratio of
#
# $$\frac{2T^2 D}{4TD^2 + 2TDD_\text{mlp}} = \frac{T}{2D + D_\text{mlp}}.$$
#
# ViT-B/16 has far fewer tokens than channels ($T = 197$ against $2D + D_\text{mlp} = 4608$); the
# tiny ViT's tokens are a larger fraction of its channels ($T = 65$ against $288$).

# %%
def quadratic_ratio(costs: dict[str, tuple[int, int]]) -> float:
    return costs["attention QK^T and AV"][1] / (costs["attention projections"][1] + costs["MLP"][1])


vit_b_384 = component_costs(ViTConfig.vit_b_16(image_size=384))
print(f"{'model':<22}{'T':>5}{'T / (2D + D_mlp)':>18}{'QK^T,AV / (proj + MLP)':>25}{'QK^T,AV share':>15}")
for name, config, costs in [("tiny CIFAR model", TINY_CONFIG, tiny_costs), ("ViT-B/16, 224 px", VIT_B_CONFIG, vit_b_costs),
                            ("ViT-B/16, 384 px", ViTConfig.vit_b_16(image_size=384), vit_b_384)]:
    predicted = config.seq_len / (2 * config.dim + config.mlp_dim)
    share = costs["attention QK^T and AV"][1] / sum(m for _, m in costs.values())
    print(f"{name:<22}{config.seq_len:>5}{predicted:>18.4f}{quadratic_ratio(costs):>25.4f}{share:>15.1%}")
    assert abs(quadratic_ratio(costs) - predicted) < 1e-12
for costs in (tiny_costs, vit_b_costs):
    assert 0.6 < costs["MLP"][0] / sum(p for p, _ in costs.values()) < 0.7, "MLPs hold about two thirds"
assert quadratic_ratio(tiny_costs) > 5 * quadratic_ratio(vit_b_costs)

# %% [markdown]
# **What this shows.** How much of a ViT's compute is quadratic can be read off its config: the
# predicted ratio $T / (2D + D_\text{mlp})$ and the counted one are the same number for all three
# models, and at a fixed width it grows with the tokens (ViT-B/16 at 224 and at 384 px).
#
# <details><summary>Caveats</summary>
#
# It does not say how the *time* splits: the attention products and the large matrix products of
# the projections and the MLP need not run at the same speed on a given machine.
# </details>

# %% [markdown]
# ## 3 · Without positions, the encoder sees a set
#
# Notebook 02 showed, with the encoder as a black box, that shuffling the patches of a model
# without position embeddings does not change its output. Now that attention and the block are
# known, here is why. Let $\Pi$ be a permutation matrix that reorders the $T$ tokens,
# $X \mapsto \Pi X$, and follow it through one block:
#
# - LayerNorm, the MLP and the residual additions act on each token separately, so they commute
#   with reordering: $f(\Pi X) = \Pi f(X)$.
# - Self-attention with $Q = XW_Q$, $K = XW_K$, $V = XW_V$ gives, since $\Pi^\top \Pi = I$ and a
#   row-wise softmax does not care in which order the rows come,
#
# $$\operatorname{softmax}\!\Big(\frac{\Pi Q (\Pi K)^\top}{\sqrt{d_h}}\Big)\, \Pi V
# = \Pi\, \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_h}}\Big) \Pi^\top \Pi V
# = \Pi\, \operatorname{Attn}(X).$$
#
# So the whole encoder is **permutation-equivariant**: $\text{Enc}(\Pi X) = \Pi\,\text{Enc}(X)$.
# Keep CLS first and shuffle the patches, and the CLS output cannot change. Only $E_\text{pos}$,
# added *before* the encoder, ties a token to its slot. We check each step on the tiny ViT
# trained in notebook 06 (as in notebook 02), with real CIFAR-10 tokens and no positions:

# %%
trained = course_runs.shipped("improved-cpu")[0].eval()  # the tiny ViT trained in notebook 06
block = trained.blocks[0]
torch.manual_seed(0)
perm = torch.randperm(TINY_CONFIG.seq_len)  # Π: a reordering of all T tokens, CLS included
with torch.no_grad():
    cls = trained.cls_token.expand(len(pixels), -1, -1)  # (B, 1, D)
    x = torch.cat([cls, trained.patch_embed(pixels)], dim=1)  # (B, T, D): no positions
    steps = {"LayerNorm, then MLP": lambda z: block.mlp(block.norm2(z)),
             "LayerNorm, then attention": lambda z: block.attn(block.norm1(z)),
             "one block, with residuals": block,
             "whole encoder": trained.encoder}
    for name, f in steps.items():
        diff = max_diff(f(x[:, perm]), f(x)[:, perm])  # f(ΠX) against Π f(X)
        print(f"{name:<27} max |f(ΠX) - Πf(X)| = {diff:.1e}")
        assert diff < 1e-4
    pos = trained.pos_embed  # (1, T, D): slot n keeps position n, whatever token lands there
    diff = max_diff(trained.encoder(x[:, perm] + pos), trained.encoder(x + pos)[:, perm])
print(f"{'whole encoder, E_pos added':<27} max |f(ΠX + E_pos) - Πf(X + E_pos)| = {diff:.1e}")
assert diff > 0.1

# %% [markdown]
# **What this shows.** Every step, and so the whole trained encoder, only moves its outputs when
# its inputs are reordered (differences at float32 rounding); add the position table and the
# outputs change outright. Order reaches a ViT through $E_\text{pos}$ alone.

# %% [markdown]
# ## 4 · torchvision and timm weights in `vit_core`
#
# torchvision and timm store the same tensors under different names (notebook 04).
# `from_torchvision` and `from_timm` rename every tensor to `vit_core`'s name, read the config off
# the shapes and load strictly: a missing, extra or misshapen tensor is an error, never a
# half-loaded model. If the conversion is right, the same images give the same logits. The images:
# CIFAR-10 test images upsampled to 224 px, normalised with the ImageNet statistics.

# %%
big = F.interpolate(images[:BIG_IMAGES].float() / 255, size=224, mode="bilinear", align_corners=False)
big = (big - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
print(f"{DATASET}: {len(big)} test image(s) ({[CIFAR10_CLASSES[i] for i in labels[:BIG_IMAGES]]}), "
      f"upsampled 32 -> 224 px: {tuple(big.shape)}")


# %%
def compare(name: str, theirs: nn.Module, ours: ViT) -> float:
    with torch.no_grad():
        their_logits, our_logits = theirs.eval()(big), ours.eval()(big)
    diff = max_diff(their_logits, our_logits)
    print(f"{name:<12} logits {tuple(our_logits.shape)} with std {their_logits.std():.3f}: max |diff| = {diff:.2e}, "
          f"same top-1: {torch.equal(their_logits.argmax(-1), our_logits.argmax(-1))}")
    assert their_logits.std() > 1e-3, "constant logits would make the comparison empty"
    assert diff <= LOGIT_TOL
    return diff


# %% [markdown]
# The models are *randomly initialised* ViT-B/16s (no download): enough to test the conversion,
# since every tensor must land in the right place for the logits to agree, but they classify
# nothing. torchvision initialises its head to zero, which would make every logit 0, so its head
# gets random weights first.

# %%
torch.manual_seed(0)
tv_model = torchvision.models.vit_b_16()  # weights=None: random
nn.init.normal_(tv_model.heads.head.weight, std=0.02)  # torchvision's init zeroes the head
ours_from_tv = from_torchvision(tv_model)
print(f"config read from torchvision's tensors: {ours_from_tv.config}")
assert ours_from_tv.config == VIT_B_CONFIG
compare("torchvision", tv_model, ours_from_tv)
del tv_model, ours_from_tv  # 86.6 M parameters each

# %%
timm_model = timm.create_model("vit_base_patch16_224", pretrained=False)  # random weights
ours_from_timm = from_timm(timm_model)
assert ours_from_timm.config == VIT_B_CONFIG
compare("timm", timm_model, ours_from_timm)
del timm_model, ours_from_timm

# %% [markdown]
# **What this shows.** Every tensor of torchvision's and timm's ViT-B/16 lands in the right place
# in `vit_core`: random weights give matching, non-constant logits. When the weights can be
# downloaded, notebooks 07 and 08 load torchvision's trained ImageNet weights the same way, with
# `from_torchvision`. The config's last fields are options left at the paper's defaults:
# `cls_only_last_block` is this notebook's speed trick (below); `drop_path`, `init`, `gelu` and
# `final_norm` are training and reproduction options (notebook 06, the appendix notebook 13);
# `stem`, `pool` and `pos` belong to the later designs of "Where next".

# %% [markdown]
# ## Summary
#
# - A ViT is patch embedding, CLS token and positions, $L$ pre-norm blocks, a final LayerNorm
#   and a linear head on the CLS token; `TinyViT` above is all of it.
# - Parameters and multiply-adds follow from the config alone and match PyTorch's FLOP counter
#   and torchvision's metadata. The MLPs hold about two thirds of the parameters; the quadratic
#   attention products cost $T / (2D + D_\text{mlp})$ times the rest.
# - The encoder is permutation-equivariant: without $E_\text{pos}$ a ViT sees a set of patches.
# - `from_torchvision` and `from_timm` give the same logits as the original models.
#
# Notebook 06 trains the tiny ViT on CIFAR-10 from scratch.

# %% [markdown]
# ## Where next: what came after this model
#
# The model of this notebook is the original ViT. Later designs each change one part of it and
# keep the rest: tokens from the image, a stack of identical blocks, a linear head.
#
# | model | what it changes | paper · code |
# | --- | --- | --- |
# | DeiT | the training, not the model: strong augmentation (RandAugment, MixUp, CutMix), stochastic depth and repeated augmentation (augmentations and regularisers; notebook 06's exercises try some) train a ViT on ImageNet-1k alone; an extra *distillation token* learns from a CNN teacher | Touvron et al. 2021, "Training data-efficient image transformers & distillation through attention" · [facebookresearch/deit](https://github.com/facebookresearch/deit) |
# | Swin Transformer | attention inside local windows that shift from block to block, and patch merging between stages: a pyramid of feature maps like a CNN's, at a cost linear in the number of patches | Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows" · [microsoft/Swin-Transformer](https://github.com/microsoft/Swin-Transformer) |
# | MAE | self-supervised pretraining: hide most patches, encode only the visible ones, and train a light decoder to rebuild the hidden pixels | He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners" · [facebookresearch/mae](https://github.com/facebookresearch/mae) |
# | simple ViT | fixed 2-D sin-cos positions, the mean of the tokens instead of a CLS token, a one-layer head: the plain ViT, trained better in fewer epochs | Beyer, Zhai and Kolesnikov 2022, "Better plain ViT baselines for ImageNet-1k" · [google-research/big_vision](https://github.com/google-research/big_vision) |
# | CCT | a few convolutions make the tokens and *sequence pooling* (a learned weighted mean) replaces the CLS token: small ViTs that learn CIFAR-10 from scratch | Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact Transformers" · [SHI-Labs/Compact-Transformers](https://github.com/SHI-Labs/Compact-Transformers) |
#
# The last two are options of `ViTConfig` in `vit_core`: `stem="conv"`, `pool="mean"` or
# `pool="seq"`, and `pos="sincos"`; the defaults stay the original model of this notebook.

# %% [markdown]
# ## Optional: a speed trick for the last block
#
# The head reads one row, $z_L^0$. In the last block that row needs every token's key and
# value, but no other token's query, attention output or MLP. `ViTConfig(cls_only_last_block=True)`
# (off by default; the series' training recipes turn it on) computes only the CLS row there:
# the same logits and gradients, fewer multiply-adds. Counted, and checked on the ten images:

# %%
def counted_macs(config: ViTConfig) -> int:
    with torch.device("meta"):
        model = ViT(config)
        image = torch.empty(1, config.in_channels, config.image_size, config.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image)
    return counter.get_total_flops() // 2


shortcut_config = replace(TINY_CONFIG, cls_only_last_block=True)
saved = 1 - counted_macs(shortcut_config) / counted_macs(TINY_CONFIG)
shortcut = ViT(shortcut_config).eval()
shortcut.load_state_dict(reference.state_dict())  # the same weights as `reference` of section 1
with torch.no_grad():
    logit_diff = max_diff(shortcut(pixels), reference(pixels))
print(f"CLS-only last block: {saved:.1%} fewer multiply-adds, max |logit diff| {logit_diff:.1e}")
assert saved > 0 and logit_diff < 1e-5

# %% [markdown]
# ## Exercises
#
# 1. **Average the tokens instead of reading CLS.** Many ViTs (and the paper's appendix D.3)
#    classify from the mean of the $N$ patch tokens after the final LayerNorm ("GAP") instead of
#    the CLS token. Write that readout for `tiny`. Then change one patch token's output of the
#    last block: which readout notices? (This is why the speed trick above cannot be used
#    with GAP.)
# 2. **ViT-L/16 by formula.** With `component_costs`, predict ViT-L/16's parameters and
#    multiply-adds ($D = 1024$, $L = 24$, $h = 16$, $D_\text{mlp} = 4096$) and compare them with
#    torchvision's metadata for `ViT_L_16_Weights.IMAGENET1K_V1` (shipped with torchvision, no
#    download).
# 3. **When does attention dominate?** For ViT-B/16 with 16 px patches, find the smallest image
#    side (a multiple of 16) at which $QK^\top$ and $AV$ cost more than the projections and the
#    MLP together, and check it with `quadratic_ratio`.
#
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: the CLS readout ignores every other row of the last block's output; GAP reads them all.
with torch.no_grad():
    z = torch.cat([tiny.cls_token.expand(len(pixels), -1, -1), tiny.patch_embed(pixels)], 1) + tiny.pos_embed
    for block in tiny.blocks:
        z = block(z)  # (B, T, D)
    readouts = {"CLS": lambda z: tiny.head(tiny.norm(z)[:, 0]),
                "GAP": lambda z: tiny.head(tiny.norm(z)[:, 1:].mean(dim=1))}  # mean of the N patch tokens
    nudged = z.clone()
    torch.manual_seed(0)
    nudged[:, 5] += 3 * torch.randn(z.shape[-1])  # change one patch token's output of the last block (a random
                                                  # direction: a constant shift would vanish in the LayerNorm)
    changes = {name: max_diff(readout(nudged), readout(z)) for name, readout in readouts.items()}
print("logit change after nudging patch token 5: " + ", ".join(f"{k} {v:.1e}" for k, v in changes.items()))
assert changes["CLS"] == 0 and changes["GAP"] > 1e-4

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: the same formulas at ViT-L/16's shape.
vit_l_config = ViTConfig.vit_b_16(dim=1024, depth=24, heads=16, mlp_dim=4096)
vit_l_costs = component_costs(vit_l_config)
l_params, l_gmacs = sum(p for p, _ in vit_l_costs.values()), sum(m for _, m in vit_l_costs.values()) / 1e9
l_meta = torchvision.models.ViT_L_16_Weights.IMAGENET1K_V1.meta
print(f"ViT-L/16: formula {l_params:,} parameters, {l_gmacs:.3f} GMACs | torchvision metadata "
      f"{l_meta['num_params']:,}, {l_meta['_ops']} GMACs")
assert l_params == l_meta["num_params"] and abs(l_gmacs - l_meta["_ops"]) < 0.001

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: the ratio T / (2D + D_mlp) passes 1 when T exceeds 2D + D_mlp = 4608 tokens.
side = next(size for size in range(224, 4096, 16)
            if quadratic_ratio(component_costs(ViTConfig.vit_b_16(image_size=size))) > 1)
below = ViTConfig.vit_b_16(image_size=side - 16)
print(f"ViT-B/16: attention products dominate from {side} px (T = {ViTConfig.vit_b_16(image_size=side).seq_len:,}); "
      f"at {side - 16} px (T = {below.seq_len:,}) the ratio is {quadratic_ratio(component_costs(below)):.3f}")
assert ViTConfig.vit_b_16(image_size=side).seq_len > 2 * 768 + 3072 >= below.seq_len
