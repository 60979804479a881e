# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# - how the position embeddings are resized when the image size changes (theirs: linear
#   spline with `scipy.ndimage.zoom`; ours: bicubic with `F.interpolate`);
# - how to prove a loader right: write a `vit_core` model *into* the Google format, load it back
#   with `vit_core.from_google_npz`, and demand identical logits.

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

import vit_core
from vit_core import ViT, ViTConfig, StateDictMismatchError, from_google_npz, resize_pos_embed, to_google_npz
from vit_core.plots import save_figure, show_images

torch.manual_seed(0)
DATA = env.data_dir()                 # datasets, caches and written files: $VIT_DATA, else data/
FIGURES = env.figures_dir()           # where the figures of the README are written
# The line anchors below point at one fixed commit of the file, so they keep pointing at the
# lines we discuss even if the repository's main branch moves on.
COMMIT = "0d00ad0d101aa6b8254bc4c932c4d778b71acc37"
SOURCE = f"https://github.com/jeonsworld/ViT-pytorch/blob/{COMMIT}/models/modeling.py"
print("reading:", SOURCE)

# %% [markdown]
# ## How the file is laid out
#
# Reading top to bottom ([the file at the commit we read](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py)):
#
# - [L28–L35](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L28-L35):
#   string constants naming the sub-scopes of one encoder block inside a Google checkpoint
#   (`MultiHeadDotProductAttention_1/query`, `MlpBlock_3/Dense_0`, `LayerNorm_0`, ...). They are
#   the names Flax gave the layers, numbered in the order the layers were created.
# - [L38](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L38):
#   `np2th`, a numpy-to-torch helper that can also reorder a convolution kernel's axes.
# - [L52](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L52)
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
# knob that the ConfigDict spreads over several places.

# %%
config = ViTConfig(image_size=32, patch_size=4, num_classes=10, dim=64, depth=2, heads=4, mlp_dim=128)
model = ViT(config).eval()
print(config)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, "
      f"{config.seq_len} tokens per image ({config.num_patches} patches + CLS)")

# %% [markdown]
# ## `Embeddings` — patches, CLS token, positions
# ([L124–L168](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L124-L168))
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
# In the hybrid case the patch size is *computed*: with image side $S$ and grid $g$,
# $p = S / 16 / g$. For the published R50+ViT-B/16 (grid 14 at 224 px) that is $p = 1$: every
# position of the $14 \times 14$ ResNet feature map becomes one token, and the "patch
# embedding" is a $1 \times 1$ convolution from the ResNet's 1024 channels to 768.

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
tokens = model.embed(images)  # (B, N, dim): CLS first, positions added
print("tokens:", tuple(tokens.shape))
patches = model.patch_embed.proj(images).flatten(2).transpose(1, 2)  # (B, num_patches, dim), their flatten+transpose
assert torch.allclose(tokens[:, 1:], patches + model.pos_embed[:, 1:], atol=1e-6)
assert torch.allclose(tokens[:, 0], (model.cls_token + model.pos_embed[:, :1])[:, 0].expand(2, -1), atol=1e-6)

# %% [markdown]
# ## `Attention` — three projections instead of one
# ([L52–L96](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L52-L96))
#
# Multi-head self-attention computes, for every head $h$,
#
# $$\mathrm{head}_h = \mathrm{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{d_h}}\right) V_h,
# \qquad Q = X W_Q + b_Q,\; K = X W_K + b_K,\; V = X W_V + b_V,$$
#
# then concatenates the heads and applies the output projection $W_O$. Their class keeps
# **three separate `Linear` layers** (`query`, `key`, `value`) and an `out` layer, and its
# `transpose_for_scores` helper reshapes $(B, N, D)$ to $(B, \text{heads}, N, d_h)$ with a
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
    q, k, v = split(F.linear(x, W_q, b_q)), split(F.linear(x, W_k, b_k)), split(F.linear(x, W_v, b_v))  # (B, H, N, d)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(C // H)).softmax(-1)  # (B, H, N, N)
    context = rearrange(weights @ v, "b h n d -> b n (h d)")  # (B, N, D)
    return attn.proj(context), weights

x = torch.randn(2, config.seq_len, D)
with torch.no_grad():
    attn.keep_weights = True  # the explicit path, which keeps the (B, H, N, N) weights in attn.weights
    ours, our_weights = attn(x), attn.weights
    attn.keep_weights, attn.weights = False, None
    theirs, their_weights = three_projection_attention(x)
print(f"max |difference|: output {(ours - theirs).abs().max():.2e}, weights {(our_weights - their_weights).abs().max():.2e}")
assert torch.allclose(ours, theirs, atol=1e-5) and torch.allclose(our_weights, their_weights, atol=1e-6)

# %% [markdown]
# ## `Mlp` — the same two layers, a different initialisation
# ([L99–L121](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L99-L121))
#
# `fc1` (width $D \to D_\text{mlp}$), GELU, dropout, `fc2` ($D_\text{mlp} \to D$), dropout:
# the same layers, names and dropout positions as our `MLP`. The difference is the
# initialisation: their weights are Xavier-uniform and their biases tiny Gaussian noise
# ($\sigma = 10^{-6}$); ours are a truncated normal with $\sigma = 0.02$ and zero biases.
# Xavier-uniform draws from $U(-a, a)$ with $a = \sqrt{6 / (\text{fan}_\text{in} + \text{fan}_\text{out})}$,
# so its standard deviation is $\sqrt{2 / (\text{fan}_\text{in} + \text{fan}_\text{out})}$. For the
# ViT-B shapes that is close to 0.02 anyway:

# %%
for fan_in, fan_out, layer in [(768, 3072, "ViT-B fc1"), (3072, 768, "ViT-B fc2"), (64, 128, "this notebook's fc1")]:
    print(f"{layer:>20}: Xavier-uniform std {math.sqrt(2 / (fan_in + fan_out)):.4f} vs vit_core 0.0200")

# %% [markdown]
# Initialisation only matters when training from scratch; loading a checkpoint overwrites it.
#
# ## `Block` — pre-norm residual block
# ([L171–L227](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L171-L227))
#
# The block is the standard pre-norm one,
#
# $$x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)),$$
#
# with both LayerNorms at $\epsilon = 10^{-6}$, the value Google's code uses and ours defaults to.
# Only the names differ: `attention_norm` is our `norm1`, `ffn_norm` our `norm2`, `ffn` our
# `mlp`. The block also carries its own `load_from(weights, n_block)`, which reads the tensors
# under `Transformer/encoderblock_{n_block}/` — we map those key by key in the table below.
#
# ## `Encoder`, `Transformer`, `VisionTransformer` — the stack and the head
# ([L230–L249](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L230-L249),
# [L252–L261](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L252-L261),
# [L264–L283](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L264-L283))
#
# - `Encoder` holds the blocks in a `ModuleList` named `layer` **and the final LayerNorm**
#   (`encoder_norm`), so its output is already normalised. In `vit_core` the final norm sits
#   on the `ViT` itself (`model.norm`), as in timm. It collects each block's attention weights
#   only when `vis` is set; otherwise the list stays empty.
# - `Transformer` just chains `Embeddings` and `Encoder`; `vit_core` has no such wrapper
#   (`ViT.forward` does the chaining).
# - `VisionTransformer` adds the linear `head` on token 0 (the CLS token), as we do. It always
#   returns a pair: `(logits, attention weights)`, or `(loss, attention weights)` when labels
#   are passed, since it computes the cross-entropy itself. Its defaults are
#   `num_classes=21843` (the ImageNet-21k label set) and `zero_head=False`; fine-tuning code
#   passes `zero_head=True` so that `load_from` sets the new head to zeros instead of copying
#   the checkpoint's.
#
# `vit_core` returns the logits alone, or `(logits, attention weights)` only when asked with
# `return_attention=True` — a call-time flag instead of their construction-time `vis`. With it
# we get one $(B, \text{heads}, N, N)$ tensor per block, each row a probability distribution:

# %%
with torch.no_grad():
    logits, attentions = model(images, return_attention=True)
print("logits:", tuple(logits.shape), "| attention maps:", [tuple(a.shape) for a in attentions])
assert len(attentions) == config.depth
assert all(torch.allclose(a.sum(-1), torch.ones(())) for a in attentions)  # softmax rows sum to 1

# %% [markdown]
# ## `load_from` — reading a Google `.npz`
# ([L192–L227](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L192-L227)
# for one block,
# [L285–L338](https://github.com/jeonsworld/ViT-pytorch/blob/0d00ad0d101aa6b8254bc4c932c4d778b71acc37/models/modeling.py#L285-L338)
# for the rest)
#
# Google trained ViT in JAX/Flax and saved the parameters as a flat `.npz`, one array per
# parameter, keyed by its scope path. Flax stores tensors the other way round from PyTorch:
#
# - a Dense kernel is $(\text{in}, \text{out})$ and computes $y = xK + b$, while `nn.Linear.weight`
#   is $(\text{out}, \text{in})$ and computes $y = xW^\top + b$; hence $W = K^\top$;
# - a convolution kernel is HWIO $(p, p, C_\text{in}, C_\text{out})$, while PyTorch wants OIHW;
#   `np2th(..., conv=True)` reorders the axes as $(3, 2, 0, 1)$;
# - the attention projections keep the heads as their own axis: `query/kernel` is
#   $(D, \text{heads}, d_h)$ with bias $(\text{heads}, d_h)$, and `out/kernel` is
#   $(\text{heads}, d_h, D)$. Flattening the two head axes (heads outer, $d_h$ inner — the
#   order our `rearrange` also uses) gives an ordinary $(D, D)$ kernel, which is then
#   transposed like any Dense kernel.
#
# Their `load_from` copies each array into the matching parameter with exactly those
# reshapes and transposes, walking the blocks with `named_children()` (whose names `"0"`,
# `"1"`, ... become the `{i}` of `encoderblock_{i}`), and joining key paths with
# `os.path.join` — which builds `/`-separated keys on Linux and macOS only. It never reads
# `pre_logits/*` (the extra Dense layer of the ImageNet-21k checkpoints), which is why its
# fine-tuning starts from `zero_head=True`.
#
# The table below is the whole correspondence, printed by code from one list of rows. The list
# is also *checked*: the `vit_core` column, expanded for every block, must name every tensor of a
# `vit_core` state dict exactly once.

# %%
MAPPING = [  # (their module, their parameter, vit_core parameter, npz key, npz shape, conversion)
    ("Embeddings", "patch_embeddings.weight", "patch_embed.proj.weight", "embedding/kernel", "(p, p, C, D)", "HWIO -> OIHW: permute(3, 2, 0, 1)"),
    ("Embeddings", "patch_embeddings.bias", "patch_embed.proj.bias", "embedding/bias", "(D,)", "as is"),
    ("Embeddings", "cls_token", "cls_token", "cls", "(1, 1, D)", "as is"),
    ("Embeddings", "position_embeddings", "pos_embed", "Transformer/posembed_input/pos_embedding", "(1, N, D)", "as is; resized if the grid differs"),
    ("Block", "attention_norm.weight", "encoder.blocks.{i}.norm1.weight", "{blk}/LayerNorm_0/scale", "(D,)", "as is"),
    ("Block", "attention_norm.bias", "encoder.blocks.{i}.norm1.bias", "{blk}/LayerNorm_0/bias", "(D,)", "as is"),
    ("Attention", "query.weight", "encoder.blocks.{i}.attn.qkv.weight", "{blk}/{mha}/query/kernel", "(D, heads, d_h)", "reshape (D, D), transpose -> rows 0:D"),
    ("Attention", "key.weight", "encoder.blocks.{i}.attn.qkv.weight", "{blk}/{mha}/key/kernel", "(D, heads, d_h)", "reshape (D, D), transpose -> rows D:2D"),
    ("Attention", "value.weight", "encoder.blocks.{i}.attn.qkv.weight", "{blk}/{mha}/value/kernel", "(D, heads, d_h)", "reshape (D, D), transpose -> rows 2D:3D"),
    ("Attention", "query.bias", "encoder.blocks.{i}.attn.qkv.bias", "{blk}/{mha}/query/bias", "(heads, d_h)", "flatten -> entries 0:D"),
    ("Attention", "key.bias", "encoder.blocks.{i}.attn.qkv.bias", "{blk}/{mha}/key/bias", "(heads, d_h)", "flatten -> entries D:2D"),
    ("Attention", "value.bias", "encoder.blocks.{i}.attn.qkv.bias", "{blk}/{mha}/value/bias", "(heads, d_h)", "flatten -> entries 2D:3D"),
    ("Attention", "out.weight", "encoder.blocks.{i}.attn.proj.weight", "{blk}/{mha}/out/kernel", "(heads, d_h, D)", "reshape (D, D), transpose"),
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
    ("attention weights", "vis=True at construction; forward always returns a pair",
     "return_attention=True at call time; logits alone otherwise"),
    ("q/k/v projections", "three Linear layers query/key/value", "one fused qkv Linear (3D outputs)"),
    ("final LayerNorm", "inside Encoder (encoder_norm)", "on the ViT (model.norm)"),
    ("loss", "forward(x, labels) returns the cross-entropy", "the training loop computes it"),
    ("init", "Xavier-uniform MLP, PyTorch-default attention, zero cls/pos", "trunc-normal 0.02, zero biases"),
    ("loading", "each module's load_from copies in place", "vit_core.from_google_npz builds a checked model"),
    ("pos-embedding resize", "scipy.ndimage.zoom, order=1 (linear)", "F.interpolate, bicubic"),
]
print_table(DIFFERENCES, ("what", "jeonsworld modeling.py", "vit_core"))

# %% [markdown]
# The first row is the only one that changes results with the published configs: with
# `dropout_rate = 0.1` and `attention_dropout_rate = 0.0`, their attention output is never
# dropped during training, while a `vit_core` model with `dropout=0.1` drops it. At evaluation
# time (`model.eval()`) dropout is off in both and the two compute the same function — which is
# what the loader test below relies on.
#
# ## Position embeddings when the image size changes
#
# A checkpoint trained at 224 px with 16 px patches has a $14 \times 14$ grid of position
# embeddings (plus CLS): $N = 197$. Fine-tuning at 384 px needs a $24 \times 24$ grid. Both
# codes keep the CLS position as it is, reshape the rest into a $g \times g$ image with $D$
# channels, and resample it:
#
# - theirs calls `scipy.ndimage.zoom(grid, (g'/g, g'/g, 1), order=1)`: a linear spline in
#   which the corner samples of the old grid land on the corners of the new one — the same as
#   bilinear `F.interpolate(..., align_corners=True)`;
# - ours (`vit_core.resize_pos_embed`) uses bicubic `F.interpolate` with `align_corners=False`,
#   which treats each embedding as the centre of a cell (timm and torchvision resize this way).
#
# Trained position embeddings are smooth over the grid, so we show the difference on a smooth
# stand-in: a 2-D sine-cosine embedding (not trained weights).

# %%
def sincos_pos_embed(grid: int, dim: int) -> torch.Tensor:
    """A smooth (1, 1 + grid*grid, dim) stand-in for trained position embeddings."""
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")  # (g, g) each
    freqs = 1.0 / 10 ** (torch.arange(dim // 4) / (dim // 4))  # (dim/4,) wavelengths 1..10 cells
    angles = torch.cat([xs.reshape(-1, 1) * freqs, ys.reshape(-1, 1) * freqs], dim=1)  # (g*g, dim/2)
    patch = torch.cat([angles.sin(), angles.cos()], dim=1)  # (g*g, dim)
    return torch.cat([torch.zeros(1, dim), patch])[None]  # (1, 1 + g*g, dim): CLS position first

def resize_like_jeonsworld(pos_embed: torch.Tensor, new_grid: int) -> torch.Tensor:
    """Their recipe in torch: linear resampling with the corners aligned."""
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]  # (1, 1, D), (1, g*g, D)
    g = math.isqrt(patch_pos.shape[1])
    grid = rearrange(patch_pos, "1 (h w) d -> 1 d h w", h=g)  # (1, D, g, g)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bilinear", align_corners=True)
    return torch.cat([cls_pos, rearrange(grid, "1 d h w -> 1 (h w) d")], dim=1)  # (1, 1 + g'*g', D)

old_grid, new_grid = 14, 24
pos = sincos_pos_embed(old_grid, 64)
theirs, ours = resize_like_jeonsworld(pos, new_grid), resize_pos_embed(pos, new_grid)
assert theirs.shape == ours.shape == (1, 1 + new_grid ** 2, 64)
assert torch.equal(theirs[:, 0], pos[:, 0]) and torch.equal(ours[:, 0], pos[:, 0])  # CLS kept
print(f"{old_grid}x{old_grid} -> {new_grid}x{new_grid}: max |ours - theirs| = {(ours - theirs).abs().max():.3f} "
      f"(values lie in [-1, 1])")

# %% [markdown]
# If `scipy` is installed, we can check the claim that their `ndimage.zoom` call equals the
# bilinear, corner-aligned resize above (it is not a `vit_core` dependency, so the check is
# skipped otherwise).

# %%
try:
    from scipy import ndimage
except ImportError:
    print("scipy is not installed: skipping the ndimage.zoom comparison (pip install scipy to run it)")
else:
    grid = pos[0, 1:].reshape(old_grid, old_grid, -1).double().numpy()  # (g, g, D), as they reshape it
    zoomed = ndimage.zoom(grid, (new_grid / old_grid, new_grid / old_grid, 1), order=1)  # (g', g', D)
    diff = np.abs(zoomed.reshape(-1, zoomed.shape[-1]) - theirs[0, 1:].double().numpy()).max()
    print(f"scipy.ndimage.zoom(order=1) vs bilinear align_corners=True: max |diff| = {diff:.1e}")
    assert diff < 1e-5

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
channel = 2  # one embedding channel, shown as an image over the patch grid
panels = [(pos, old_grid, f"original {old_grid}x{old_grid}"),
          (theirs, new_grid, "jeonsworld: linear, corners aligned"),
          (ours, new_grid, "vit_core: bicubic")]
for ax, (p, g, title) in zip(axes, panels):
    ax.imshow(p[0, 1:, channel].reshape(g, g).numpy(), cmap="RdBu", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.suptitle("Resizing position embeddings (smooth sine-cosine stand-in, channel 2)", fontsize=10)
fig.tight_layout()
save_figure(fig, FIGURES / "10_reading_jeonsworld_modeling_pos_resize")
plt.show()

# %% [markdown]
# The two agree in the middle and differ most near the border: aligning the corners stretches
# the old grid to the new grid's outermost cells, while cell-centre resampling extrapolates
# half a cell there. Both are reasonable; a checkpoint fine-tuned with one and resized with the
# other starts a little off, which a few fine-tuning steps repair.
#
# ## Proving the loader: write a `vit_core` model into Google's format, read it back
#
# We have no Google checkpoint here, but we can make a file in exactly their format:
# `vit_core.to_google_npz` (in `vit_core/loaders.py`, beside the loader) takes our model's
# weights and applies the *inverse* of every conversion in the table — for a Dense layer
# $K = W^\top$, for the patch convolution OIHW $\to$ HWIO (axes $(2, 3, 1, 0)$), and for attention
# split the fused weight into $W_Q, W_K, W_V$ and give each transposed kernel its heads axis back:
#
# $$K_Q = W_Q^\top \in \mathbb{R}^{D \times D} \;\longrightarrow\; \mathbb{R}^{D \times \text{heads} \times d_h},
# \qquad K_O = W_O^\top \;\longrightarrow\; \mathbb{R}^{\text{heads} \times d_h \times D}.$$
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
# The shapes are the published format's, for our sizes ($p = 4$, $C = 3$, $D = 64$, 4 heads of
# $d_h = 16$, $D_\text{mlp} = 128$, $N = 65$, 10 classes):

# %%
p, C, D, heads, d_h, D_mlp = config.patch_size, config.in_channels, config.dim, config.heads, config.dim // config.heads, config.mlp_dim
expected_shapes = {
    "embedding/kernel": (p, p, C, D), "embedding/bias": (D,), "cls": (1, 1, D),
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
# Save it with `np.savez` (exactly how the public checkpoints are stored: one array per key,
# `/` in the names) and load it with `vit_core.from_google_npz`. The loader reads the whole
# config off the shapes — patch size from the kernel, heads from the query kernel's middle
# axis, image size from the number of positions — so we pass nothing but the path.

# %%
npz_path = DATA / "10_vit_core_as_google_format.npz"
to_google_npz(model, npz_path)  # the same arrays as above, written with np.savez
start = time.perf_counter()
loaded = from_google_npz(npz_path)
print(f"wrote {npz_path.name} ({npz_path.stat().st_size / 1e6:.2f} MB), loaded in {time.perf_counter() - start:.2f} s")
print("config read from the file:", loaded.config)
assert loaded.config == config

# %%
batch = torch.randn(8, 3, 32, 32)
with torch.no_grad():
    direct, via_npz = model(batch), loaded(batch)
max_diff = (direct - via_npz).abs().max().item()
print(f"logits of the model built directly vs loaded from the npz: max |diff| = {max_diff:.2e}")
assert max_diff <= 1e-5

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
# Fine-tuning at a new resolution is the other common use: `image_size=` resizes the position
# embeddings right after loading (bicubic, as above), and `num_classes=` starts a fresh head —
# what their `zero_head=True` is for.

# %%
bigger = from_google_npz(npz_path, num_classes=2, image_size=48)
with torch.no_grad():
    out = bigger(torch.randn(2, 3, 48, 48))
print(f"{bigger.config.grid_size}x{bigger.config.grid_size} grid, pos_embed {tuple(bigger.pos_embed.shape)}, "
      f"logits {tuple(out.shape)}")
assert bigger.pos_embed.shape == (1, 1 + 12 ** 2, config.dim) and out.shape == (2, 2)
assert torch.equal(bigger.cls_token, model.cls_token)  # the backbone came from the file

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
# models take inputs scaled to $[-1, 1]$, i.e. mean 0.5 and standard deviation 0.5 per channel.
#
# Hybrid (R50+ViT) checkpoints carry the ResNet's `conv_root/*`, `gn_root/*` and `block*/...`
# arrays; `vit_core` has no ResNet stem, so we refuse those explicitly.

# %%
checkpoint = DATA / "ViT-B_16.npz"
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
                          mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), device="cpu")
    x, y = next(iter(loader))
    with torch.no_grad():
        top = vit(x).softmax(-1).topk(1)
    titles = [f"{CIFAR10_CLASSES[t]}\n-> {categories[i][:18]} {p:.0%}"
              for t, i, p in zip(y.tolist(), top.indices[:, 0].tolist(), top.values[:, 0].tolist())]
    fig = show_images(test_images[picked], titles, ncols=4, scale=2.2)
    fig.suptitle(f"{checkpoint.name} on {source_name('cifar10', DATA)} test images (upscaled)", fontsize=10, y=1.03)
    save_figure(fig, FIGURES / "10_reading_jeonsworld_modeling_real_checkpoint")
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
#   through `vit_core.from_google_npz` with logits equal to within $10^{-5}$, and a file with a
#   missing array was refused by name.
