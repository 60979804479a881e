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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/10_reading_jeonsworld_modeling.ipynb)
#
# # 10 · Reading someone else's ViT: jeonsworld/ViT-pytorch's `modeling.py`
#
# [jeonsworld/ViT-pytorch](https://github.com/jeonsworld/ViT-pytorch) is one of the most widely
# read PyTorch ports of the original Google ViT. Its model lives in one file,
# [`models/modeling.py`](https://github.com/jeonsworld/ViT-pytorch/blob/main/models/modeling.py).
# This notebook reads that file class by class, in our own words, and lines it up against
# `vit_core`, the model this series built. No code is copied from it: we explain, link and map.
#
# **What you will learn**
# - how each of its classes (`Embeddings`, `Attention`, `Mlp`, `Block`, `Encoder`, `Transformer`,
#   `VisionTransformer`) corresponds to a piece of `vit_core`, parameter by parameter;
# - the differences that matter when you move weights or results between the two: dropout
#   placement, the hybrid ResNet stem, the `vis` flag, initialisation;
# - how Google's `.npz` checkpoints are laid out (JAX/Flax kernels are `(in, out)`, convolutions
#   are HWIO, attention kernels keep a separate heads axis) and which transposes and reshapes
#   turn them into PyTorch tensors;
# - how the position embeddings are resized when the image size changes: theirs (a linear
#   spline with `scipy.ndimage.zoom`), ours, and those of torchvision, timm and HuggingFace,
#   each run here and compared;
# - why their fine-tuning passes `zero_head=True`;
# - how to prove a loader right: write a `vit_core` model *into* the Google format, load it back
#   with `vit_core.from_google_npz`, and demand identical logits.
#
# **Notation** (the series' table, notebook 01): image side $H = W$, patch side $P$, grid side
# $G = H/P$, $N = G^2$ patches, $T = N + 1$ tokens, width $D$, $h$ heads of width $d_h = D/h$,
# MLP width $D_\text{mlp}$, depth $L$, $C$ colour channels.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %%
from pathlib import Path
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

import vit_core
from vit_core import (ViT, ViTConfig, StateDictMismatchError, from_google_npz, resize_pos_embed,
                      to_google_npz)
from course import max_diff
from vit_core.train import replace_head
from vit_core.plots import show_images
from course import figures

torch.manual_seed(0)
DATA, FIGURES = here.data, here.figures  # what setup() chose above
# The line anchors below point at one fixed commit of the file: the head of the repository's
# main branch when this notebook was written (the file last changed in a786151), so they keep
# pointing at the lines we discuss even if the branch moves on.
COMMIT = "460a162767de1722a014ed2261463dbbc01196b6"
SOURCE = f"https://github.com/jeonsworld/ViT-pytorch/blob/{COMMIT}/models/modeling.py"
print("reading:", SOURCE)

# %% [markdown]
# ## How the file is laid out
#
# Reading top to bottom ([the file at the commit we read](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py)):
#
# - [L28–L35](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L28-L35):
#   string constants naming the sub-scopes of one encoder block inside a Google checkpoint
#   (`MultiHeadDotProductAttention_1/query`, `MlpBlock_3/Dense_0`, `LayerNorm_0`, ...). They are
#   the names Flax gave the layers, numbered in the order the layers were created.
# - [L38](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L38):
#   `np2th`, a numpy-to-torch helper that can also reorder a convolution kernel's axes.
# - [L52](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L52)
#   onwards: the seven classes, smallest first, then a `CONFIGS` dictionary naming the presets
#   (ViT-B/16, B/32, L/16, L/32, H/14, the hybrid R50+ViT-B/16, and a tiny `testing` one) that
#   live in `models/configs.py`.
#
# Two design choices shape everything: the model is configured by a nested
# `ml_collections.ConfigDict` (`config.hidden_size`, `config.transformer["num_heads"]`, ...)
# instead of a flat dataclass, and **every module knows how to load itself from the `.npz`**
# (`Block.load_from`, `VisionTransformer.load_from`) instead of one separate loader. `vit_core`
# does the opposite on both counts: one flat `ViTConfig` and all the format knowledge in
# `vit_core/loaders.py`, so the model file stays about the maths.
#
# We will compare against a small `vit_core` model; its config is printed so you can see every
# knob that the ConfigDict spreads over several places, and beside it the series' symbols with
# this model's values (the shapes below are written with them).

# %%
config = ViTConfig(image_size=32, patch_size=4, num_classes=10, dim=64, depth=2, heads=4, mlp_dim=128)
model = ViT(config).eval()
print(config)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
SYMBOLS = {"H = W": config.image_size, "P": config.patch_size, "G = H/P": config.grid_size,
           "N = G^2": config.num_patches, "T = N + 1": config.seq_len, "C": config.in_channels,
           "D": config.dim, "h": config.heads, "d_h = D/h": config.dim // config.heads,
           "D_mlp": config.mlp_dim, "L": config.depth, "classes": config.num_classes}
print("this notebook's model:", ", ".join(f"{k} = {v}" for k, v in SYMBOLS.items()))

# %% [markdown]
# ## `Embeddings` — patches, CLS token, positions
# ([L124–L168](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L124-L168))
#
# The constructor first decides between two kinds of model. If the config has a `patches.grid`
# entry, the model is a **hybrid**: a ResNet first turns the image into a feature map 16 times
# smaller than the image, and the "patches" are cut from that feature map. Otherwise the
# patches are cut straight from the pixels with `patches.size`.
#
# Either way the patch projection is a `Conv2d` whose kernel and stride equal the patch size
# (`patch_embeddings`, our `patch_embed.proj`). The output is flattened to a sequence and
# transposed to put the tokens before the channels; a learned `cls_token` is prepended and the
# learned `position_embeddings` (our `pos_embed`) are added, followed by dropout. Both learned
# tensors start at zero there; `vit_core` starts them from a truncated normal with
# $\sigma = 0.02$ (irrelevant once you load a checkpoint).
#
# In the hybrid case the patch size is *computed*: with image side $H$ and the config's grid
# $G$, $P = H / 16 / G$, and the number of patches is $(H/16)^2$ whatever $G$ says. For the
# published R50+ViT-B/16 (grid 14 at 224 px) that is $P = 1$: every position of the
# $14 \times 14$ ResNet feature map becomes one token, and the "patch embedding" is a
# $1 \times 1$ convolution from the ResNet's 1024 channels to $D = 768$.

# %%
def hybrid_patch_size(image_size: int, grid: int, stem_stride: int = 16) -> int:
    """Side of the patches cut from the ResNet feature map of a hybrid model."""
    feature_map = image_size // stem_stride  # the ResNet stem downsamples by 16
    return feature_map // grid

for image_size in (224, 384):
    p = hybrid_patch_size(image_size, grid=14)
    print(f"hybrid at {image_size} px: feature map {image_size // 16}x{image_size // 16}, "
          f"patch {p}x{p} -> {(image_size // 16 // p) ** 2} tokens + CLS")
assert hybrid_patch_size(224, 14) == 1

# %% [markdown]
# Our `PatchEmbedding` is the non-hybrid branch only. The token sequence it produces has the
# same layout as theirs: CLS first, then patches row by row.

# %%
images = torch.randn(2, 3, 32, 32)
tokens = model.embed(images)  # (B, T, D): CLS first, positions added
print("tokens:", tuple(tokens.shape))
patches = model.patch_embed.proj(images).flatten(2).transpose(1, 2)  # (B, N, D), their flatten+transpose
assert torch.allclose(tokens[:, 1:], patches + model.pos_embed[:, 1:], atol=1e-6)
assert torch.allclose(tokens[:, 0], (model.cls_token + model.pos_embed[:, :1])[:, 0].expand(2, -1), atol=1e-6)

# %% [markdown]
# ## `Attention` — three projections instead of one
# ([L52–L96](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L52-L96))
#
# Multi-head self-attention computes, for every head $j = 1, \dots, h$,
#
# $$\mathrm{head}_j = \mathrm{softmax}\!\left(\frac{Q_j K_j^\top}{\sqrt{d_h}}\right) V_j,
# \qquad Q = X W_Q^\top + b_Q,\; K = X W_K^\top + b_K,\; V = X W_V^\top + b_V,$$
#
# where $X$ is $T \times D$, each $W$ is a $D \times D$ `nn.Linear` weight and $Q_j$ is the
# $j$-th block of $d_h$ columns of $Q$; then the heads are concatenated and projected by $W_O$.
# Their class keeps **three separate `Linear` layers** (`query`, `key`, `value`) and an `out`
# layer, and its `transpose_for_scores` helper reshapes $(B, T, D)$ to $(B, h, T, d_h)$ with a
# `view` and a `permute` — the same thing our one-line `rearrange` says. `vit_core` keeps one
# fused `qkv` Linear of width $3D$: one matrix multiply instead of three, and its weight rows
# are exactly $[W_Q; W_K; W_V]$ stacked. So the three layers are three slices of ours.
#
# Two more details. Their softmax weights are kept for the caller only when the `vis` flag was
# set at construction (they are taken *before* attention dropout, as ours are). And their
# dropout after the output projection is built with the **attention** dropout rate, not the
# general dropout rate — we come back to that below.
#
# The cell below writes their computation inline — three projections, explicit scores,
# softmax — from the slices of our fused weight, and checks that it equals `vit_core.Attention`.

# %%
attn = model.blocks[0].attn
D, H = config.dim, config.heads
W_q, W_k, W_v = attn.qkv.weight.chunk(3, dim=0)  # each (D, D), (out, in) like any nn.Linear
b_q, b_k, b_v = attn.qkv.bias.chunk(3)  # each (D,)

def three_projection_attention(x):
    """Attention written their way: separate q/k/v projections, explicit softmax."""
    B, N, C = x.shape
    split = lambda t: rearrange(t, "b n (h d) -> b h n d", h=H)  # noqa: E731
    q, k, v = split(F.linear(x, W_q, b_q)), split(F.linear(x, W_k, b_k)), split(F.linear(x, W_v, b_v))  # (B, h, T, d_h)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(C // H)).softmax(-1)  # (B, h, T, T)
    context = rearrange(weights @ v, "b h n d -> b n (h d)")  # (B, T, D)
    return attn.proj(context), weights

x = torch.randn(2, config.seq_len, D)
with torch.no_grad():
    ours, our_weights = attn.forward_with_weights(x)  # the explicit path: output and (B, h, T, T) weights
    theirs, their_weights = three_projection_attention(x)
print(f"max |difference|: output {(ours - theirs).abs().max():.2e}, weights {(our_weights - their_weights).abs().max():.2e}")
assert torch.allclose(ours, theirs, atol=1e-5) and torch.allclose(our_weights, their_weights, atol=1e-6)

# %% [markdown]
# **What this shows.** Three projections and one fused projection are the same function when
# the fused weight is the three stacked row-wise: the printed differences are float32
# rounding or zero.
#
# <details><summary>Caveats</summary>
#
# The two classes need not *train* alike: their dropout sits elsewhere (below).
# </details>

# %% [markdown]
# ## `Mlp` — the same two layers, a different initialisation
# ([L99–L121](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L99-L121))
#
# `fc1` (width $D \to D_\text{mlp}$), GELU, dropout, `fc2` ($D_\text{mlp} \to D$), dropout:
# the same layers, names and dropout positions as our `MLP`. The difference is the
# initialisation: their weights are Xavier-uniform and their biases tiny Gaussian noise
# ($\sigma = 10^{-6}$); ours are a truncated normal with $\sigma = 0.02$ and zero biases.
# Xavier-uniform draws from $U(-a, a)$ with $a = \sqrt{6 / (\text{fan}_\text{in} + \text{fan}_\text{out})}$,
# so its standard deviation is $\sqrt{2 / (\text{fan}_\text{in} + \text{fan}_\text{out})}$. For the
# ViT-B shapes that is close to 0.02 anyway:

# %%
xavier_std = {}
for fan_in, fan_out, layer in [(768, 3072, "ViT-B fc1"), (3072, 768, "ViT-B fc2"),
                               (config.dim, config.mlp_dim, "this notebook's fc1")]:
    xavier_std[layer] = math.sqrt(2 / (fan_in + fan_out))
    print(f"{layer:>20}: Xavier-uniform std {xavier_std[layer]:.4f} vs vit_core 0.0200")
assert abs(xavier_std["ViT-B fc1"] - 0.02) < 0.005 and xavier_std["this notebook's fc1"] > 2 * 0.02

# %% [markdown]
# **What this shows.** For ViT-B's widths the two initialisations have about the same spread
# (first two rows); for a narrow model such as this notebook's they do not (third row).
#
# <details><summary>Caveats</summary>
#
# Initialisation only matters when training from scratch; loading a checkpoint overwrites it.
# </details>
#
# ## `Block` — pre-norm residual block
# ([L171–L227](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L171-L227))
#
# The block is the standard pre-norm one,
#
# $$x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)),$$
#
# with both LayerNorms at $\epsilon = 10^{-6}$, as in Google's code and ours. Only the names
# differ: `attention_norm` is our `norm1`, `ffn_norm` our `norm2`, `ffn` our `mlp`. Its
# `load_from(weights, n_block)` reads the tensors under `Transformer/encoderblock_{n_block}/`
# (the table below maps them key by key).
#
# ## `Encoder`, `Transformer`, `VisionTransformer` — the stack and the head
# ([L230–L247](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L230-L247),
# [L250–L259](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L250-L259),
# [L262–L281](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L262-L281))
#
# - `Encoder` holds the blocks in a `ModuleList` named `layer` **and the final LayerNorm**
#   (`encoder_norm`), so its output is already normalised. In `vit_core` the final norm sits
#   on the `ViT` itself (`model.norm`), as in timm. It collects each block's attention weights
#   only when `vis` is set; otherwise the list stays empty.
# - `Transformer` just chains `Embeddings` and `Encoder`; `vit_core` has no such wrapper
#   (`ViT.forward` does the chaining).
# - `VisionTransformer` adds the linear `head` on token 0 (the CLS token), as we do. Without
#   labels its `forward` returns a pair, `(logits, attention weights)`, the list being empty
#   unless `vis` was set; with labels it returns the cross-entropy loss alone
#   ([L272–L281](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L272-L281)).
#   Its defaults are `num_classes=21843` (the ImageNet-21k label set) and `zero_head=False`
#   (we come back to `zero_head` after the loader).
#
# `vit_core` returns the logits alone, or `(logits, attention weights)` only when asked with
# `return_attention=True` — a call-time flag instead of their construction-time `vis`. With it
# we get one $(B, h, T, T)$ tensor per block, each row a probability distribution:

# %%
with torch.no_grad():
    logits, attentions = model(images, return_attention=True)
print("logits:", tuple(logits.shape), "| attention maps:", [tuple(a.shape) for a in attentions])
assert len(attentions) == config.depth
assert all(torch.allclose(a.sum(-1), torch.ones(())) for a in attentions)  # softmax rows sum to 1

# %% [markdown]
# ## `load_from` — reading a Google `.npz`
# ([L192–L227](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L192-L227)
# for one block,
# [L283–L336](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L283-L336)
# for the rest)
#
# Google trained ViT in JAX/Flax and saved the parameters as a flat `.npz`, one array per
# parameter, keyed by its scope path. Flax stores tensors the other way round from PyTorch:
#
# - a Dense kernel is $(\text{in}, \text{out})$ and computes $y = xK + b$, while `nn.Linear.weight`
#   is $(\text{out}, \text{in})$ and computes $y = xW^\top + b$; hence $W = K^\top$;
# - a convolution kernel is HWIO $(P, P, C, D)$ for the patch embedding, while PyTorch wants
#   OIHW $(D, C, P, P)$; `np2th(..., conv=True)` reorders the axes as $(3, 2, 0, 1)$;
# - the attention projections keep the heads as their own axis: `query/kernel` is
#   $(D, h, d_h)$ with bias $(h, d_h)$, and `out/kernel` is $(h, d_h, D)$. Flattening the two
#   head axes (heads outer, $d_h$ inner — the order our `rearrange` also uses) gives an
#   ordinary $(D, D)$ kernel, which is then transposed like any Dense kernel.
#
# Their `load_from` copies each array into the matching parameter with exactly those
# reshapes and transposes, walking the blocks with `named_children()` (whose names `"0"`,
# `"1"`, ... become the `{i}` of `encoderblock_{i}`), and joining key paths with
# `os.path.join` — which builds `/`-separated keys on Linux and macOS only. It reads only the
# keys it names: a checkpoint's `pre_logits/*` arrays (the extra Dense layer before the head
# that ImageNet-21k pre-training used) are left unread, because their configs set
# `representation_size = None` and build no such layer. The head is the one key it treats
# specially, through `zero_head` (a section below).
#
# The table below is the whole correspondence, printed by code from one list of rows. The list
# is also *checked*: the `vit_core` column, expanded for every block, must name every tensor of a
# `vit_core` state dict exactly once.

# %%
MAPPING = [  # (their module, their parameter, vit_core parameter, npz key, npz shape, conversion)
    ("Embeddings", "patch_embeddings.weight", "patch_embed.proj.weight", "embedding/kernel", "(P, P, C, D)", "HWIO -> OIHW: permute(3, 2, 0, 1)"),
    ("Embeddings", "patch_embeddings.bias", "patch_embed.proj.bias", "embedding/bias", "(D,)", "as is"),
    ("Embeddings", "cls_token", "cls_token", "cls", "(1, 1, D)", "as is"),
    ("Embeddings", "position_embeddings", "pos_embed", "Transformer/posembed_input/pos_embedding", "(1, T, D)", "as is; resized if the grid differs"),
    ("Block", "attention_norm.weight", "encoder.blocks.{i}.norm1.weight", "{blk}/LayerNorm_0/scale", "(D,)", "as is"),
    ("Block", "attention_norm.bias", "encoder.blocks.{i}.norm1.bias", "{blk}/LayerNorm_0/bias", "(D,)", "as is"),
    ("Attention", "query.weight", "encoder.blocks.{i}.attn.qkv.weight", "{blk}/{mha}/query/kernel", "(D, h, d_h)", "reshape (D, D), transpose -> rows 0:D"),
    ("Attention", "key.weight", "encoder.blocks.{i}.attn.qkv.weight", "{blk}/{mha}/key/kernel", "(D, h, d_h)", "reshape (D, D), transpose -> rows D:2D"),
    ("Attention", "value.weight", "encoder.blocks.{i}.attn.qkv.weight", "{blk}/{mha}/value/kernel", "(D, h, d_h)", "reshape (D, D), transpose -> rows 2D:3D"),
    ("Attention", "query.bias", "encoder.blocks.{i}.attn.qkv.bias", "{blk}/{mha}/query/bias", "(h, d_h)", "flatten -> entries 0:D"),
    ("Attention", "key.bias", "encoder.blocks.{i}.attn.qkv.bias", "{blk}/{mha}/key/bias", "(h, d_h)", "flatten -> entries D:2D"),
    ("Attention", "value.bias", "encoder.blocks.{i}.attn.qkv.bias", "{blk}/{mha}/value/bias", "(h, d_h)", "flatten -> entries 2D:3D"),
    ("Attention", "out.weight", "encoder.blocks.{i}.attn.proj.weight", "{blk}/{mha}/out/kernel", "(h, d_h, D)", "reshape (D, D), transpose"),
    ("Attention", "out.bias", "encoder.blocks.{i}.attn.proj.bias", "{blk}/{mha}/out/bias", "(D,)", "as is"),
    ("Block", "ffn_norm.weight", "encoder.blocks.{i}.norm2.weight", "{blk}/LayerNorm_2/scale", "(D,)", "as is"),
    ("Block", "ffn_norm.bias", "encoder.blocks.{i}.norm2.bias", "{blk}/LayerNorm_2/bias", "(D,)", "as is"),
    ("Mlp", "fc1.weight", "encoder.blocks.{i}.mlp.fc1.weight", "{blk}/MlpBlock_3/Dense_0/kernel", "(D, D_mlp)", "transpose"),
    ("Mlp", "fc1.bias", "encoder.blocks.{i}.mlp.fc1.bias", "{blk}/MlpBlock_3/Dense_0/bias", "(D_mlp,)", "as is"),
    ("Mlp", "fc2.weight", "encoder.blocks.{i}.mlp.fc2.weight", "{blk}/MlpBlock_3/Dense_1/kernel", "(D_mlp, D)", "transpose"),
    ("Mlp", "fc2.bias", "encoder.blocks.{i}.mlp.fc2.bias", "{blk}/MlpBlock_3/Dense_1/bias", "(D,)", "as is"),
    ("Encoder", "encoder_norm.weight", "norm.weight", "Transformer/encoder_norm/scale", "(D,)", "as is"),
    ("Encoder", "encoder_norm.bias", "norm.bias", "Transformer/encoder_norm/bias", "(D,)", "as is"),
    ("VisionTransformer", "head.weight", "head.weight", "head/kernel", "(D, classes)", "transpose (zeros if zero_head)"),
    ("VisionTransformer", "head.bias", "head.bias", "head/bias", "(classes,)", "as is (zeros if zero_head)"),
]
THEIR_PREFIX = {"Embeddings": "transformer.embeddings.", "Encoder": "transformer.encoder.",
                "Block": "transformer.encoder.layer.{i}.", "Attention": "transformer.encoder.layer.{i}.attn.",
                "Mlp": "transformer.encoder.layer.{i}.ffn.", "VisionTransformer": ""}
SHORT = {"{blk}": "encoderblock_{i}", "{mha}": "MHDPA_1"}  # abbreviations for printing only

def print_table(rows, header):
    widths = [max(len(str(r[j])) for r in [header, *rows]) for j in range(len(header))]
    line = lambda r: " | ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    print(line(header)), print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))

rows = []
for module, name, ours, key, shape, conversion in MAPPING:
    for short, long in SHORT.items():
        key = key.replace(short, long)
    rows.append((module, THEIR_PREFIX[module] + name, ours, key, shape, conversion))
print_table(rows, ("their class", "their parameter", "vit_core parameter", "npz key", "npz shape", "conversion"))
print("\nencoderblock_{i} = Transformer/encoderblock_{i}, MHDPA_1 = MultiHeadDotProductAttention_1")

# %% [markdown]
# The check: expand `{i}` over the blocks and compare with the names `vit_core` really uses.
# The three fused-`qkv` rows name the same tensor on purpose (three slices of it), so we
# compare *sets*.

# %%
expanded = {ours.format(i=i) for _, _, ours, *_ in MAPPING for i in range(config.depth)}
actual = set(model.state_dict())
assert expanded == actual, f"table and vit_core disagree: {sorted(expanded ^ actual)}"
print(f"the table covers all {len(actual)} tensors of a depth-{config.depth} vit_core ViT, and nothing else")

# %% [markdown]
# ## The differences that matter
#
# Printed by code again, so the list lives next to the values it talks about:

# %%
DIFFERENCES = [
    ("attention output dropout", "uses the *attention* dropout rate (0.0 in every preset)",
     f"uses ViTConfig.dropout (here {config.dropout})"),
    ("other dropout (embeddings, MLP)", "dropout_rate (0.1 in every preset)",
     "ViTConfig.dropout, same positions"),
    ("hybrid ResNet stem", "Embeddings(hybrid) runs a ResNet-v2 (GroupNorm, weight-standardised convs)",
     "not modelled: patches come from pixels only"),
    ("attention weights", "forward returns (logits, weights); the list is empty unless vis=True",
     "return_attention=True at call time; logits alone otherwise"),
    ("q/k/v projections", "three Linear layers query/key/value", "one fused qkv Linear (3D outputs)"),
    ("final LayerNorm", "inside Encoder (encoder_norm)", "on the ViT (model.norm)"),
    ("loss", "forward(x, labels) returns the cross-entropy alone", "the training loop computes it"),
    ("init", "Xavier-uniform MLP, PyTorch-default attention and head, zero cls/pos",
     "trunc-normal 0.02, zero biases"),
    ("loading", "each module's load_from copies in place", "vit_core.from_google_npz builds a checked model"),
    ("pos-embedding resize", "scipy.ndimage.zoom, order=1 (linear, corners aligned)",
     "F.interpolate, bicubic, cell centres"),
    ("head for a new task", "zero_head=True: zeros (their train.py)",
     "num_classes=k: trunc-normal 0.02; replace_head(zero_init=True): zeros"),
]
print_table(DIFFERENCES, ("what", "jeonsworld modeling.py", "vit_core"))

# %% [markdown]
# **What this shows.** With the same weights in `eval()` mode the two compute the same function;
# in training mode the first row matters: their attention output is never dropped (its rate is
# 0.0), while a `vit_core` model with `dropout=0.1` drops it.
#
# <details><summary>Caveats</summary>
#
# The init, resize and head rows change where training *starts*, not the function a given set of
# weights computes. The table lists what this notebook compared; it is not a proof that nothing
# else differs (the round trip below is the proof, for inference).
# </details>
#
# ## Position embeddings when the image size changes
#
# A checkpoint trained at $H = 224$ with $P = 16$ has $G = 14$: 196 patch positions plus CLS,
# $T = 197$. Fine-tuning at 384 px needs $G' = 24$. Every library below keeps the CLS position
# as it is, reshapes the rest into a $G \times G$ image with $D$ channels, and resamples it to
# $G' \times G'$. They differ in the kernel and in *where* the old samples sit on the new grid:
#
# - **corners aligned** (`align_corners=True`): the centres of the old grid's corner cells land
#   on the centres of the new grid's corner cells, so the old grid is stretched over the new one;
# - **cell centres** (`align_corners=False`): every cell keeps its centre at the same place in
#   the image, which is what a patch position means; at the border the resize extrapolates by
#   half a cell.
#
# jeonsworld calls `scipy.ndimage.zoom(grid, (G'/G, G'/G, 1), order=1)`
# ([L312–L320](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L312-L320)),
# a linear spline with the corners aligned. The cell below reads what the other libraries do
# from their installed source: the lines that choose the kernel and the alignment, with file
# and line number, and asserts the settings the text relies on.

# %%
import inspect

import timm
import torchvision
import transformers
from timm.layers import resample_abs_pos_embed
from torchvision.models.vision_transformer import interpolate_embeddings
from transformers.models.vit import modeling_vit

RESIZERS = {  # library -> the function that resizes position embeddings
    f"torchvision {torchvision.__version__}": interpolate_embeddings,
    f"timm {timm.__version__}": resample_abs_pos_embed,
    f"transformers {transformers.__version__}": modeling_vit.ViTEmbeddings.interpolate_pos_encoding,
    "vit_core": resize_pos_embed,
}
for library, function in RESIZERS.items():
    lines, first = inspect.getsourcelines(function)
    path = Path(inspect.getsourcefile(function))
    print(f"{library}: {function.__qualname__} in .../{'/'.join(path.parts[-3:])}")
    for number, line in enumerate(lines, start=first):
        if any(word in line for word in ("mode=", "align_corners", "antialias", "interpolation:")):
            print(f"    L{number}: {line.strip()}")
defaults = inspect.signature(resample_abs_pos_embed).parameters
assert "align_corners=True" in inspect.getsource(interpolate_embeddings)  # torchvision: corners aligned
assert defaults["align_corners"].default is None and defaults["antialias"].default is True  # timm: centres, AA
assert 'align_corners=False' in inspect.getsource(modeling_vit.ViTEmbeddings.interpolate_pos_encoding)

# %% [markdown]
# So: **torchvision** resizes bicubically with the corners aligned (`align_corners=True`), like
# jeonsworld but with a cubic kernel; **timm** resizes bicubically at cell centres
# (`align_corners=None`, which `F.interpolate` treats as `False`) with `antialias=True`, which
# switches PyTorch to a different bicubic kernel even when upsampling; **HuggingFace** and
# **`vit_core`** use plain bicubic at cell centres. Trained position embeddings vary smoothly
# over the grid, so we compare the five on a smooth stand-in whose value is known *between*
# the cells: a 2-D sine-cosine embedding (not trained weights), resized from $14 \times 14$ to
# $24 \times 24$, and measured against the same formula evaluated at the new patch centres.

# %%
def sincos_at(xs: torch.Tensor, ys: torch.Tensor, dim: int) -> torch.Tensor:
    """(len(ys) * len(xs), dim) sine-cosine embedding at continuous grid coordinates (cells)."""
    y, x = torch.meshgrid(ys.double(), xs.double(), indexing="ij")  # (rows, cols) each
    freqs = 1.0 / 10 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # periods from 2π to about 54 cells
    angles = torch.cat([x.reshape(-1, 1) * freqs, y.reshape(-1, 1) * freqs], dim=1)  # (rows*cols, D/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()  # (rows*cols, D)


def sincos_pos_embed(grid: int, dim: int) -> torch.Tensor:
    """A smooth (1, 1 + G*G, D) stand-in for trained position embeddings."""
    cells = torch.arange(grid)
    return torch.cat([torch.zeros(1, dim), sincos_at(cells, cells, dim)])[None]  # CLS position first


def resize_like_jeonsworld(pos_embed: torch.Tensor, new_grid: int) -> torch.Tensor:
    """Their recipe in torch: linear resampling with the corners aligned."""
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]  # (1, 1, D), (1, G*G, D)
    g = math.isqrt(patch_pos.shape[1])
    grid = rearrange(patch_pos, "1 (h w) d -> 1 d h w", h=g)  # (1, D, G, G)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bilinear", align_corners=True)
    return torch.cat([cls_pos, rearrange(grid, "1 d h w -> 1 (h w) d")], dim=1)  # (1, 1 + G'*G', D)


def resize_like_huggingface(pos_embed: torch.Tensor, new_grid: int, patch: int = 16) -> torch.Tensor:
    """transformers' ViTEmbeddings.interpolate_pos_encoding, called on a ViTEmbeddings holding pos_embed."""
    g, dim = math.isqrt(pos_embed.shape[1] - 1), pos_embed.shape[2]
    embeddings = modeling_vit.ViTEmbeddings(transformers.ViTConfig(hidden_size=dim, image_size=g * patch,
                                                                   patch_size=patch))
    embeddings.position_embeddings.data.copy_(pos_embed)
    size = new_grid * patch
    with torch.no_grad():
        return embeddings.interpolate_pos_encoding(torch.zeros(1, 1 + new_grid ** 2, dim), size, size)


old_grid, new_grid, dim = 14, 24, 64
pos = sincos_pos_embed(old_grid, dim)
resized = {
    "jeonsworld: linear, corners": resize_like_jeonsworld(pos, new_grid),
    "torchvision: bicubic, corners": interpolate_embeddings(
        new_grid * 16, 16, {"encoder.pos_embedding": pos.clone()})["encoder.pos_embedding"],
    "timm: bicubic AA, centres": resample_abs_pos_embed(pos, (new_grid, new_grid), num_prefix_tokens=1),
    "HuggingFace: bicubic, centres": resize_like_huggingface(pos, new_grid),
    "vit_core: bicubic, centres": resize_pos_embed(pos, new_grid),
}
centres = (torch.arange(new_grid) + 0.5) * old_grid / new_grid - 0.5  # new patch centres, in old cells
truth = sincos_at(centres, centres, dim).view(new_grid, new_grid, dim)  # the stand-in's own value there
border = torch.ones(new_grid, new_grid, dtype=torch.bool)
border[1:-1, 1:-1] = False
errors = {}
ours = resized["vit_core: bicubic, centres"]
print(f"{old_grid}x{old_grid} -> {new_grid}x{new_grid}, D = {dim}; |resized - formula at the new patch centres|:")
print(f"{'':<31}{'mean':>8}{'interior max':>14}{'border max':>12}{'max |x - vit_core|':>20}")
for name, value in resized.items():
    assert value.shape == (1, 1 + new_grid ** 2, dim) and torch.equal(value[:, 0], pos[:, 0])  # CLS kept
    error = (value[0, 1:].view(new_grid, new_grid, dim) - truth).abs()  # (G', G', D)
    errors[name] = error
    print(f"{name:<31}{error.mean():>8.4f}{error[~border].max():>14.3f}{error[border].max():>12.3f}"
          f"{max_diff(value, ours):>20.2e}")
corners_bicubic = F.interpolate(rearrange(pos[:, 1:], "1 (h w) d -> 1 d h w", h=old_grid), size=(new_grid, new_grid),
                                mode="bicubic", align_corners=True)  # (1, D, G', G')
timm_plain = resample_abs_pos_embed(pos, (new_grid, new_grid), num_prefix_tokens=1, antialias=False)
print(f"\ntorchvision vs bicubic align_corners=True: max |diff| = "
      f"{max_diff(resized['torchvision: bicubic, corners'][0, 1:], rearrange(corners_bicubic, '1 d h w -> (h w) d')):.1e}")
print(f"HuggingFace vs vit_core: max |diff| = {max_diff(resized['HuggingFace: bicubic, centres'], ours):.1e}")
print(f"timm with antialias=False vs vit_core: max |diff| = {max_diff(timm_plain, ours):.1e}; "
      f"with timm's default antialias=True: {max_diff(resized['timm: bicubic AA, centres'], ours):.1e}")
assert max_diff(resized["HuggingFace: bicubic, centres"], ours) < 1e-6 and max_diff(timm_plain, ours) < 1e-6
mean_error = {name: e.mean().item() for name, e in errors.items()}
assert max(mean_error[n] for n in mean_error if "centres" in n) < min(mean_error[n] for n in mean_error if "corners" in n)

# %% [markdown]
# With `scipy` (in the series' requirements, though not a `vit_core` dependency) we can check the
# claim that their `ndimage.zoom` call equals the bilinear, corner-aligned resize above; without
# it the check is skipped and says so.

# %%
try:
    from scipy import ndimage
except ImportError:
    print("scipy is not installed: skipping the ndimage.zoom comparison (pip install scipy to run it)")
else:
    grid = pos[0, 1:].reshape(old_grid, old_grid, -1).double().numpy()  # (G, G, D), as they reshape it
    zoomed = ndimage.zoom(grid, (new_grid / old_grid, new_grid / old_grid, 1), order=1)  # (G', G', D)
    theirs = resized["jeonsworld: linear, corners"]
    diff = np.abs(zoomed.reshape(-1, zoomed.shape[-1]) - theirs[0, 1:].double().numpy()).max()
    print(f"scipy {__import__('scipy').__version__}: ndimage.zoom(order=1) vs bilinear align_corners=True: "
          f"max |diff| = {diff:.1e}")
    assert diff < 1e-5

# %% [markdown]
# The figure puts the geometry beside its consequence. Top: for each column of the new grid,
# where the resize reads the old grid, relative to the centre of that column's own patch
# (in old cells; from the two conventions' formulas). Bottom: each library's error against the
# stand-in's formula, averaged over channels and rows, for each new column (measured above);
# HuggingFace and `vit_core` coincide there, drawn as hollow circles under a dashed line.

# %%
columns = torch.arange(new_grid, dtype=torch.float64)
patch_centre = (columns + 0.5) * old_grid / new_grid - 0.5  # where column j's patch centre is, in old cells
read_at = {"corners aligned": columns * (old_grid - 1) / (new_grid - 1),  # align_corners=True
           "cell centres": patch_centre}                                 # align_corners=False
fig, (ax_read, ax_error) = plt.subplots(2, 1, figsize=(8.6, 7.4))  # 8.6 in: 9 pt stays 9 pt at README width
for (name, where), colour in zip(read_at.items(), ("C0", "C3")):
    ax_read.plot(columns, where - patch_centre, "o-", ms=4, color=colour,
                 label=f"{name}: " + ("jeonsworld, torchvision" if "corners" in name else "timm, HF, vit_core"))
ax_read.set_xlabel(f"column of the new {new_grid}x{new_grid} grid")
ax_read.set_ylabel("read position - patch centre (old cells)")
ax_read.set_title(f"where the {old_grid} -> {new_grid} resize reads", fontsize=10)
ax_read.legend(fontsize=9, loc="upper right")
styles = {  # HuggingFace and vit_core give the same numbers: large hollow markers under a dashed line
    "jeonsworld: linear, corners": dict(marker="s", ms=4, color="C0"),
    "torchvision: bicubic, corners": dict(marker="D", ms=4, color="C1"),
    "timm: bicubic AA, centres": dict(marker="^", ms=4, color="C2"),
    "HuggingFace: bicubic, centres": dict(marker="o", ms=8, mfc="none", mew=1.2, color="C3"),
    "vit_core: bicubic, centres": dict(marker=".", ms=4, ls="--", color="C4")}
same = max_diff(resized["HuggingFace: bicubic, centres"], ours) < 1e-6  # asserted above
for name, error in errors.items():
    label = name + (" (= HuggingFace)" if name.startswith("vit_core") and same else "")
    ax_error.plot(columns, error.mean(dim=(0, 2)), label=label, **styles[name])
ax_error.set_xlabel(f"column of the new {new_grid}x{new_grid} grid")
ax_error.set_ylabel("mean |resized - formula|")
ax_error.set_ylim(bottom=0)
ax_error.set_title("error against the stand-in's formula (measured)", fontsize=10)
ax_error.legend(fontsize=9, ncol=2, loc="upper center")
ax_error.set_ylim(top=2.1 * max(e.mean(dim=(0, 2)).max().item() for e in errors.values()))
for ax in (ax_read, ax_error):
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3)
fig.suptitle("Resizing position embeddings (bottom: a smooth sine-cosine stand-in, not trained weights)",
             fontsize=11)
fig.tight_layout()
figures.save(fig, FIGURES / "10_reading_jeonsworld_modeling_pos_resize")
plt.show()
shift = (read_at["corners aligned"] - patch_centre).abs().max().item()
print(f"corner alignment reads up to {shift:.3f} old cells away from the patch's own centre (at the edges), "
      f"0 at the middle; cell centres read exactly there")
assert abs(shift - 0.5 * (1 - old_grid / new_grid)) < 1e-9

# %% [markdown]
# **What this shows.** The corner-aligned resizes (jeonsworld, torchvision) read up to the
# printed offset away from each edge patch's own position, and their error against the formula
# is larger there and on average; HuggingFace and `vit_core` give the same numbers, and timm
# differs from them only through its anti-aliased kernel.
#
# <details><summary>Caveats</summary>
#
# It does not show which convention is better for *trained* embeddings, which are no formula,
# or what accuracy a resized checkpoint keeps (notebook 02 measures resizing without
# fine-tuning; the ViT paper fine-tunes after resizing). The practical rule: to reproduce a
# library's logits at a new size, resize the way that library does.
# </details>

# %% [markdown]
# ## Proving the loader: write a `vit_core` model into Google's format, read it back
#
# We have no Google checkpoint here, but we can make a file in exactly their format:
# `vit_core.to_google_npz` (in `vit_core/loaders.py`, beside the loader) takes our model's
# weights and applies the *inverse* of every conversion in the table — for a Dense layer
# $K = W^\top$, for the patch convolution OIHW $\to$ HWIO (axes $(2, 3, 1, 0)$), and for attention
# split the fused weight into $W_Q, W_K, W_V$ and give each transposed kernel its heads axis back:
#
# $$K_Q = W_Q^\top \in \mathbb{R}^{D \times D} \;\longrightarrow\; \mathbb{R}^{D \times h \times d_h},
# \qquad K_O = W_O^\top \;\longrightarrow\; \mathbb{R}^{h \times d_h \times D}.$$
#
# If `from_google_npz` then rebuilds a model with the same logits, both directions are right.
#
# One precaution first. A freshly initialised model has every LayerNorm scale at 1 and every
# bias at 0, so a loader that swapped `LayerNorm_0` and `LayerNorm_2`, or two biases, would still
# produce identical logits. Giving every tensor its own random values makes each mistake visible.

# %%
with torch.no_grad():
    for tensor in model.parameters():
        tensor.add_(0.1 * torch.randn_like(tensor))  # LayerNorm scales become 1 + noise, biases noise
assert all(len(t.unique()) > 1 for t in model.parameters())  # no constant tensor left

# %%
arrays = to_google_npz(model)
print(f"{len(arrays)} arrays; the top-level ones and block 0:")
print_table([(k, str(v.shape)) for k, v in arrays.items()
             if not k.startswith("Transformer/encoderblock_") or k.startswith("Transformer/encoderblock_0/")],
            ("npz key", "shape"))

# %% [markdown]
# The shapes are the published format's, for this notebook's sizes (the symbols printed near
# the top: $P$, $C$, $D$, $h$, $d_h$, $D_\text{mlp}$, $T$ and the number of classes):

# %%
P, C, D, h, d_h, D_mlp = (config.patch_size, config.in_channels, config.dim, config.heads,
                          config.dim // config.heads, config.mlp_dim)
heads = h
expected_shapes = {
    "embedding/kernel": (P, P, C, D), "embedding/bias": (D,), "cls": (1, 1, D),
    "Transformer/posembed_input/pos_embedding": (1, config.seq_len, D),
    "Transformer/encoderblock_1/LayerNorm_0/scale": (D,),
    "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/query/kernel": (D, heads, d_h),
    "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/value/bias": (heads, d_h),
    "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/out/kernel": (heads, d_h, D),
    "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/out/bias": (D,),
    "Transformer/encoderblock_1/LayerNorm_2/bias": (D,),
    "Transformer/encoderblock_1/MlpBlock_3/Dense_0/kernel": (D, D_mlp),
    "Transformer/encoderblock_1/MlpBlock_3/Dense_1/kernel": (D_mlp, D),
    "Transformer/encoder_norm/scale": (D,), "head/kernel": (D, config.num_classes), "head/bias": (config.num_classes,),
}
for key, shape in expected_shapes.items():
    assert arrays[key].shape == shape, f"{key}: {arrays[key].shape} != {shape}"
print(f"all {len(expected_shapes)} checked shapes match the Google layout")

# %% [markdown]
# **What this shows.** Our weights, rewritten with the inverse conversions, have exactly the
# shapes of the published format.
#
# <details><summary>Caveats</summary>
#
# Shapes alone cannot catch a transposed square matrix or two swapped tensors of the same shape
# (exercise 1 makes that mistake on purpose); the logits below can.
# </details>

# %% [markdown]
# Save it with `np.savez` (exactly how the public checkpoints are stored: one array per key,
# `/` in the names) and load it with `vit_core.from_google_npz`. The loader reads the whole
# config off the shapes — patch size from the kernel, heads from the query kernel's middle
# axis, image size from the number of positions — so we pass nothing but the path.

# %%
npz_path = DATA / "10_vit_core_as_google_format.npz"
to_google_npz(model, npz_path)  # the same arrays as above, written with np.savez
loaded = from_google_npz(npz_path)
print(f"wrote {npz_path.name} ({npz_path.stat().st_size / 1e6:.2f} MB) and loaded it back")
print("config read from the file:", loaded.config)
assert loaded.config == config

# %%
batch = torch.randn(8, 3, 32, 32)
with torch.no_grad():
    direct, via_npz = model(batch), loaded(batch)
roundtrip_diff = (direct - via_npz).abs().max().item()
print(f"logits of the model built directly vs loaded from the npz: max |diff| = {roundtrip_diff:.2e}")
assert roundtrip_diff <= 1e-5

# %% [markdown]
# A loader that passes on good input must also *fail* on bad input, loudly. Drop one array and
# the loader names it instead of leaving a parameter at its random initial value:

# %%
broken = {k: v for k, v in arrays.items() if k != "Transformer/encoderblock_1/MlpBlock_3/Dense_0/bias"}
try:
    from_google_npz(broken)
except StateDictMismatchError as error:
    print("refused, as it should be:", error)
else:
    raise AssertionError("from_google_npz accepted a checkpoint with a missing array")

# %% [markdown]
# **What this shows.** Writing and reading back gives the same logits (the printed difference),
# and a missing array is refused by name.
#
# <details><summary>Caveats</summary>
#
# A mistake made the same way in both directions (say, the wrong heads order) would pass; what
# rules it out is the fixed Google layout the shapes were checked against, and, with a real
# checkpoint, sensible predictions (the full-profile cell at the end).
# </details>
#
# Fine-tuning at a new resolution is the other common use: `image_size=` resizes the position
# embeddings right after loading (bicubic at cell centres, as above), and `num_classes=` drops
# the file's head and starts a fresh one.

# %%
bigger = from_google_npz(npz_path, num_classes=2, image_size=48)
with torch.no_grad():
    out = bigger(torch.randn(2, 3, 48, 48))
print(f"{bigger.config.grid_size}x{bigger.config.grid_size} grid, pos_embed {tuple(bigger.pos_embed.shape)}, "
      f"logits {tuple(out.shape)}")
assert bigger.pos_embed.shape == (1, 1 + 12 ** 2, config.dim) and out.shape == (2, 2)
assert torch.equal(bigger.cls_token, model.cls_token)  # the backbone came from the file

# %% [markdown]
# ## `zero_head`: why their fine-tuning starts from a zero head
#
# Their `train.py`
# ([L58–L65](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/train.py#L58-L65))
# builds `VisionTransformer(config, img_size, zero_head=True, num_classes=num_classes)` with 10
# or 100 classes (CIFAR-10 or CIFAR-100) and then calls `load_from` on a Google checkpoint, whose
# head has the 21843 ImageNet-21k classes or the 1000 of ImageNet-1k. `load_from` copies each
# array in place with `copy_`, which needs equal shapes, so copying that head into a 10-class
# `Linear` fails; `zero_head=True` skips the file's head and sets the new one to zeros
# ([L285–L290](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/models/modeling.py#L285-L290)).
# Zeros, rather than `nn.Linear`'s random init, follow the ViT paper (Dosovitskiy et al., 2021,
# section *Fine-tuning and higher resolution*): for fine-tuning, the pre-trained prediction head
# is removed and a zero-initialised $D \times K$ layer attached, $K$ being the number of
# downstream classes. So `zero_head` is there because the class count changes; it has nothing
# to do with `pre_logits`, which is never read either way. The cell shows the failing copy,
# then what `vit_core` does.

# %%
file_head = torch.from_numpy(arrays["head/kernel"]).t()  # (10, D): the file's 10-class head as a Linear weight
new_head = nn.Linear(config.dim, 2)  # a 2-class task
try:
    with torch.no_grad():
        new_head.weight.copy_(file_head)  # what load_from does with zero_head=False
except RuntimeError as error:
    print(f"copy_ of the file's {tuple(file_head.shape)} head into a {tuple(new_head.weight.shape)} Linear "
          f"fails: {str(error).splitlines()[0]}")
else:
    raise AssertionError("a 10-class head was copied into a 2-class Linear")
print(f"vit_core from_google_npz(num_classes=2): fresh head, weight std {bigger.head.weight.std():.4f} "
      f"(trunc-normal 0.02), bias max |b| {bigger.head.bias.abs().max():.1f}")
replace_head(bigger, 2, zero_init=True)  # what zero_head=True gives
print(f"after vit_core.train.replace_head(model, 2, zero_init=True): max |weight| = "
      f"{bigger.head.weight.abs().max():.1f}, max |bias| = {bigger.head.bias.abs().max():.1f}")
assert bigger.head.weight.abs().max() == 0 and bigger.head.bias.abs().max() == 0

# %% [markdown]
# **What this shows.** A head cannot be carried over to a task with another number of classes,
# so both codes start a new one; a zero head makes every class equally likely at the first step
# and (exercise 3) sends no gradient into the backbone until the head itself has moved.
#
# <details><summary>Caveats</summary>
#
# Whether zeros beat a small random init on a given task is not measured here.
# </details>

# %% [markdown]
# ## A real checkpoint (full profile, if you have one)
#
# The public checkpoints are in Google's `vit_models` bucket
# (see [google-research/vision_transformer](https://github.com/google-research/vision_transformer)).
# The ImageNet-21k pre-trained, ImageNet-1k fine-tuned ViT-B/16 is
# `https://storage.googleapis.com/vit_models/imagenet21k%2Bimagenet2012/ViT-B_16.npz`
# (384 px, 1000 classes, about 350 MB; `ViT-B_16-224.npz` beside it is the 224 px one). Put it
# at `data/ViT-B_16.npz` and run this notebook in the full profile: the cell below loads it and
# classifies a few CIFAR-10 test images (32 px upscaled, so expect rough guesses). Google's
# models take inputs scaled to $[-1, 1]$: the cell prints the per-channel mean and standard
# deviation that do it, the ones jeonsworld's data pipeline uses
# ([`utils/data_utils.py` L19, L24](https://github.com/jeonsworld/ViT-pytorch/blob/460a162767de1722a014ed2261463dbbc01196b6/utils/data_utils.py#L17-L25)).
#
# Hybrid (R50+ViT) checkpoints carry the ResNet's `conv_root/*`, `gn_root/*` and `block*/...`
# arrays; `vit_core` has no ResNet stem, so we refuse those explicitly.

# %%
checkpoint = DATA / "ViT-B_16.npz"
GOOGLE_MEAN, GOOGLE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # pixels in [0, 1] -> [-1, 1]
print(f"Google ViT inputs: mean {GOOGLE_MEAN}, std {GOOGLE_STD}, so [0, 1] -> "
      f"[{(0 - GOOGLE_MEAN[0]) / GOOGLE_STD[0]:g}, {(1 - GOOGLE_MEAN[0]) / GOOGLE_STD[0]:g}]")
if env.is_smoke():
    print("smoke profile: the real-checkpoint demo is skipped; the npz built above was used.")
elif not checkpoint.is_file():
    print(f"No real checkpoint: {checkpoint} is absent, so everything above used the npz built from a "
          f"vit_core model. Download imagenet21k+imagenet2012/ViT-B_16.npz from the vit_models bucket "
          f"(URL above) to {checkpoint} to run this cell on real weights.")
else:
    real = np.load(checkpoint)
    if any(k.startswith(("conv_root/", "gn_root/")) for k in real.files):
        raise ValueError(f"{checkpoint} is a hybrid R50+ViT checkpoint: vit_core has no ResNet stem")
    try:
        vit = from_google_npz(real)
    except StateDictMismatchError as error:  # ImageNet-21k pre-training checkpoints carry pre_logits
        print(f"cannot use its head ({error}); loading the backbone with a fresh 10-class head instead, "
              f"so no predictions are shown")
        vit = from_google_npz(real, num_classes=10)
    print(f"loaded {checkpoint.name}: {vit.config}")

# %% [markdown]
# When the checkpoint is present and has the 1000 ImageNet classes, show what it sees.

# %%
if not env.is_smoke() and checkpoint.is_file() and vit.config.num_classes == 1000:
    from torchvision.models import ViT_B_16_Weights
    from vit_core.data import CIFAR10_CLASSES, TensorLoader, load_tensors, source_name

    categories = ViT_B_16_Weights.IMAGENET1K_V1.meta["categories"]  # the standard ImageNet-1k order
    test_images, test_labels = load_tensors("cifar10", "test", DATA, download=env.downloads_allowed())
    picked = torch.arange(0, len(test_labels), len(test_labels) // 8)[:8]
    loader = TensorLoader(test_images[picked], test_labels[picked], 8, train=False, image_size=vit.config.image_size,
                          mean=GOOGLE_MEAN, std=GOOGLE_STD, device="cpu")
    x, y = next(iter(loader))
    with torch.no_grad():
        top = vit(x).softmax(-1).topk(1)
    titles = [f"{CIFAR10_CLASSES[t]}\n-> {categories[i][:18]} {p:.0%}"
              for t, i, p in zip(y.tolist(), top.indices[:, 0].tolist(), top.values[:, 0].tolist())]
    fig = show_images(test_images[picked], titles, ncols=4, scale=2.2)
    fig.suptitle(f"{checkpoint.name} on {source_name('cifar10', DATA)} test images (upscaled)", fontsize=10, y=1.03)
    figures.save(fig, FIGURES / "10_reading_jeonsworld_modeling_real_checkpoint")
    plt.show()
else:
    print("no real-checkpoint predictions in this run (see the cell above for why)")

# %% [markdown]
# ## Summary
#
# - jeonsworld's `modeling.py` and `vit_core` compute the same ViT; they differ in packaging
#   (nested ConfigDict vs one dataclass, self-loading modules vs one loader, a `Transformer`
#   wrapper, the final norm inside the encoder), in the q/k/v layout (three Linears vs one
#   fused), and in one training-time detail: which dropout rate the attention output uses.
# - Google's npz format is PyTorch's layout transposed: Dense kernels `(in, out)`, convolutions
#   HWIO, attention kernels with a separate heads axis. The table above is the complete map.
# - A loader is proved by a round trip: our weights went into that format and came back
#   through `vit_core.from_google_npz` with equal logits; a missing array was refused by name.
# - Position embeddings are resized with the corners aligned (jeonsworld, torchvision) or at
#   cell centres (timm, HuggingFace, `vit_core`), with linear, bicubic or anti-aliased kernels.
# - `zero_head=True` exists because a fine-tuning task has another number of classes than the
#   checkpoint's head; zeros are the ViT paper's choice for the new head.
#
# ## Exercises
#
# 1. **A mistake shapes cannot catch.** Swap the query and key kernels of block 0 in the
#    `arrays` written above (both are $(D, h, d_h)$) and load the result with
#    `from_google_npz`. Does the loader notice? Do the logits change?
# 2. **Corners aligned, exactly.** Resize the $14 \times 14$ stand-in `pos` to $24 \times 24$
#    with bicubic `F.interpolate`, once with `align_corners=True` and once with `False`. Show
#    that only the first keeps the four corner embeddings exactly, and explain why from where
#    each puts the new samples.
# 3. **What a zero head does to the first step.** Load the npz with a fresh 5-class head, zero
#    it with `replace_head(..., zero_init=True)`, and take one backward pass of the
#    cross-entropy on a random batch. Which parameters get a non-zero gradient, and what is
#    the predicted distribution?
#
# Solutions follow; CI runs them and asserts what they claim.

# %% [markdown]
# ---
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: query and key kernels have the same shape, so a loader that reads shapes cannot
# tell them apart. The file loads, and the logits change: attention now scores k·q instead of q·k.
block0 = "Transformer/encoderblock_0/MultiHeadDotProductAttention_1"
swapped = dict(arrays)
swapped[f"{block0}/query/kernel"], swapped[f"{block0}/key/kernel"] = arrays[f"{block0}/key/kernel"], arrays[f"{block0}/query/kernel"]
swapped_model = from_google_npz(swapped)  # no error: every key is present with the right shape
with torch.no_grad():
    gap = max_diff(swapped_model(batch), model(batch))
print(f"loaded without complaint; max |logit change| from swapping q and k in block 0: {gap:.2e}")
assert gap > 1e-3

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: with align_corners=True the new grid's corner samples sit exactly on the old corner
# cells' centres, and a cubic (or linear) interpolant passes through its samples there. With
# False they sit half a new cell inside the image's edge, between old samples (and beyond the
# outermost old centre), so the value is interpolated.
patch_grid = rearrange(pos[:, 1:], "1 (h w) d -> 1 d h w", h=old_grid)  # (1, D, 14, 14)
corner_gap = {}
for aligned in (True, False):
    big = F.interpolate(patch_grid, size=(new_grid, new_grid), mode="bicubic", align_corners=aligned)  # (1, D, 24, 24)
    corner_gap[aligned] = max(max_diff(big[..., i, j], patch_grid[..., k, l])
                              for (i, k) in ((0, 0), (-1, -1)) for (j, l) in ((0, 0), (-1, -1)))
    print(f"align_corners={aligned}: max |new corner - old corner| = {corner_gap[aligned]:.2e}")
assert corner_gap[True] < 1e-6 and corner_gap[False] > 1e-3

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: with W = 0 the logits are all equal (softmax uniform), and the gradient reaching the
# features is W^T (softmax - onehot) = 0, so only the head's weight and bias get a gradient.
student = from_google_npz(npz_path, num_classes=5)
replace_head(student, 5, zero_init=True)
student.train()
x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 5, (8,))
logits = student(x)
F.cross_entropy(logits, y).backward()
with_grad = sorted(name for name, p in student.named_parameters() if p.grad is not None and p.grad.abs().max() > 0)
print(f"predicted probabilities for the first image: {[round(p, 3) for p in logits.softmax(-1)[0].tolist()]}")
print(f"parameters with a non-zero gradient: {with_grad}")
assert torch.allclose(logits.softmax(-1), torch.full((8, 5), 0.2)) and with_grad == ["head.bias", "head.weight"]
