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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/01_patch_embeddings.ipynb)
#
# # 01 · Patch embeddings: an image becomes a sequence of tokens
#
# A Transformer reads a *sequence* of vectors; an image is a grid of pixels. The first idea
# of the Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words") is
# almost embarrassingly simple: cut the image into square patches, flatten each patch into a
# vector, and multiply it by one shared matrix. Each patch is now a "word".
#
# **What you will learn**
# - how an image is cut into a grid of patches, and in which order they become a sequence;
# - three ways to write the patchify + project step (reshape/permute, einops, a strided
#   `Conv2d`), shown to compute the same numbers, and that `vit_core.PatchEmbedding` is that step;
# - the shapes of every tensor, for a 32 px CIFAR model and for ViT-Base/16 at 224 px;
# - what the patch size does to sequence length, attention cost and measured speed.
#
# **Words the outputs use.** *Profile*: `full` or `smoke` (the smoke profile shrinks every run
# to check the code). *Shipped model*: trained once, saved in `data/checkpoints/`. *Stand-in*: a
# labelled smaller substitute when weights or data cannot be had offline. *The JPEG copy of
# CIFAR-10*: the offline data, CIFAR-10's images stored as quality-75 JPEG files (notebook 13
# measures what that changes).

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %% [markdown]
# ## The whole model, first
#
# This is where the series is going: the whole Vision Transformer, with the shape of every
# tensor for one image in the tiny CIFAR-10 model we train and in ViT-B/16 of the paper. This
# notebook is its top three boxes.

# %%
import matplotlib.pyplot as plt

from course.diagram import vit_architecture

vit_architecture()  # drawn from ViTConfig, so the shapes are the code's shapes
plt.show()

# %% [markdown]
# **The map of the series.** In code the same model is about twenty lines. Notebook 05 writes
# this `TinyViT` and checks that it gives the same logits as `vit_core.ViT`; the comment on
# each line says which notebook teaches it (03 attention, 04 the block around it).
#
# ```python
# class TinyViT(nn.Module):
#     def __init__(self, config):
#         super().__init__()
#         self.patch_embed = PatchEmbedding(config)                          # 01 patches
#         self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))       # 02 CLS token
#         self.pos_embed = nn.Parameter(torch.zeros(1, config.seq_len, config.dim))  # 02 positions
#         self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))  # 03 + 04 blocks
#         self.norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)    # 04 LayerNorm
#         self.head = nn.Linear(config.dim, config.num_classes)              # 05 assembly
#
#     def forward(self, images):
#         x = self.patch_embed(images)                       # 01: (B, N, D) patch tokens
#         cls = self.cls_token.expand(x.shape[0], -1, -1)    # 02: (B, 1, D)
#         x = torch.cat([cls, x], dim=1) + self.pos_embed    # 02: (B, T, D)
#         for block in self.blocks:
#             x = block(x)                                   # 03-04: (B, T, D)
#         return self.head(self.norm(x)[:, 0])               # 05: read out the CLS token
# ```
#
# You are not expected to understand this yet; each line is taught in the notebook named beside it.

# %%
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from matplotlib.patheffects import withStroke

from vit_core import PatchEmbedding, ViT, ViTConfig
from course import max_diff
from vit_core.data import CIFAR10_CLASSES, load_tensors, source_name
from course import figures

torch.manual_seed(0)
plt.rcParams.update({"font.size": 10})  # with figures at most ~8.6 in wide: >= 9 pt on screen (course.figures)
DEVICE, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above

# Hyper-parameters of this notebook, in one place.
IMAGE_SIZE = 32       # CIFAR-10 images are 32 x 32 pixels
PATCH_SIZE = 4        # side of one patch, in pixels: the tiny ViT's choice
DIM = 48              # embedding width of the tiny ViT
ATOL = RTOL = 1e-5    # float32 tolerance: sums done in a different order differ by ~1e-7
TIMING_BATCH = 8      # images per timed forward pass
TIMING_REPEATS = env.pick(full=7, smoke=3)  # timed passes per patch size; the fastest is kept

# %% [markdown]
# ## 0. Notation
#
# The symbols of the whole series. The two columns are the tiny CIFAR-10 model (trained in
# notebook 06) and ViT-B/16 of the paper: `ViTConfig.cifar10_tiny()` and `ViTConfig.vit_b_16()`.
#
# | symbol | meaning | tiny CIFAR-10 | ViT-B/16 |
# | --- | --- | --- | --- |
# | $H = W$ | image side, pixels ($C = 3$ channels) | 32 | 224 |
# | $P$ | patch side, pixels | 4 | 16 |
# | $G = H/P$ | grid side: patches per row and per column | 8 | 14 |
# | $N = G^2$ | number of patches | 64 | 196 |
# | $T = N + 1$ | tokens: the patches and one CLS token | 65 | 197 |
# | $D$ | width: length of every token vector | 48 | 768 |
# | $h$ | attention heads | 4 | 12 |
# | $d_h = D/h$ | head width | 12 | 64 |
# | $D_\text{mlp}$ | MLP width | 192 | 3072 |
# | $L$ | depth: number of blocks | 4 | 12 |
#
# $P$ is always a *side length* in pixels, never a count; counts are $G$, $N$ and $T$. A batch
# of $B$ images gives tensors of shape $(B, T, D)$.

# %% [markdown]
# ## 1. A real image
#
# We take one test image from CIFAR-10 (the offline JPEG copy when it is on disk). Its
# tensor has the layout PyTorch uses everywhere: channels first, $(C, H, W) = (3, 32, 32)$.

# %%
images, labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)  # uint8 (10000, 3, 32, 32), int64 (10000,)
SOURCE = source_name("cifar10", DATA)
bird = CIFAR10_CLASSES.index("bird")
index = (labels == bird).nonzero().flatten()[3].item()  # a bird on a clear blue sky
image = images[index].float() / 255  # (3, 32, 32) in [0, 1]
print(f"image {index} of {SOURCE} test split, class {CIFAR10_CLASSES[labels[index]]!r}, "
      f"shape {tuple(image.shape)}, dtype {image.dtype}")
assert image.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and 0 <= image.min() and image.max() <= 1

# %% [markdown]
# ## 2. From a grid of pixels to a sequence of patches
#
# With patch side $P$, an image $x \in \mathbb{R}^{C \times H \times W}$ ($H = W$) splits into a
# $G \times G$ grid, $G = H/P$, of
#
# $$N = G^2 = \frac{H\,W}{P^2} \quad\text{patches, each flattened to a vector of length } P^2 C .$$
#
# For CIFAR with $P = 4$: $N = 64$ patches of $4 \cdot 4 \cdot 3 = 48$ numbers, read in
# **row-major order** (left to right, then top to bottom) like words on a page. A `reshape`
# *splits* each spatial axis into (which patch, where inside it); a `permute` brings the two
# "which patch" axes to the front:

# %%
def patchify_reshape(images: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) images -> (B, N, C*p*p) flattened patches, row-major patch order (p = P)."""
    B, C, H, W = images.shape
    gh, gw = H // p, W // p  # patches per column and per row (G, G for a square image)
    x = images.reshape(B, C, gh, p, gw, p)  # (B, C, gh, p, gw, p): H = gh*p, W = gw*p
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p): patch index first, its pixels last
    return x.reshape(B, gh * gw, C * p * p)  # (B, N, C*p*p)


batch = image.unsqueeze(0)  # (1, 3, 32, 32): a batch of one
patches = patchify_reshape(batch, PATCH_SIZE)  # (1, 64, 48)
print("patches:", tuple(patches.shape))
assert patches.shape == (1, (IMAGE_SIZE // PATCH_SIZE) ** 2, 3 * PATCH_SIZE ** 2)

# %% [markdown]
# Let us *see* it. Left: the image. Middle: the same image with the $G \times G = 8 \times 8$
# patch grid and each patch's position in the sequence. Right: the sequence itself, one row per token, each
# row the 16 pixels of that patch in raster order (shown in colour; the model sees the 48
# numbers $R_1..R_{16}, G_1..G_{16}, B_1..B_{16}$). Bottom: the first tokens, in order, as the
# encoder will read them.

# %%
def show_patch_figure(image: torch.Tensor, patches: torch.Tensor, p: int, title: str, first: int = 24):
    """Image | patch grid with sequence indices | token matrix; below: the first tokens.
    On grids wider than 8 the numbers would not fit in every cell: only every other patch of the
    first row and of the first column is numbered, and the last patch (N - 1)."""
    C, H, W = image.shape
    g = H // p
    fig = plt.figure(figsize=(8.6, 4.9))
    grid_spec = fig.add_gridspec(2, 3, height_ratios=[4, 1.1])
    ax_img, ax_grid, ax_seq = (fig.add_subplot(grid_spec[0, i]) for i in range(3))
    ax_img.imshow(image.permute(1, 2, 0))  # (H, W, C) for imshow
    ax_img.set_title(f"image {C}x{H}x{W}")
    ax_grid.imshow(image.permute(1, 2, 0))
    for k in range(1, g):
        ax_grid.axhline(k * p - 0.5, color="white", lw=1)
        ax_grid.axvline(k * p - 0.5, color="white", lw=1)
    for n in range(g * g):
        row, col = divmod(n, g)
        if g <= 8 or (row == 0 or col == 0) and row % 2 == 0 and col % 2 == 0 or n == g * g - 1:
            ax_grid.text(col * p + p / 2 - 0.5, row * p + p / 2 - 0.5, str(n), ha="center", va="center",
                         fontsize=9, color="yellow", path_effects=[withStroke(linewidth=2, foreground="black")])
    ax_grid.set_title(f"{g}x{g} grid of {p}x{p} patches" + ("" if g <= 8 else "\n(every other index numbered)"))
    pixels = rearrange(patches[0], "n (c pp) -> n pp c", c=C)  # (N, p*p, C): one row per token
    ax_seq.imshow(pixels, aspect="auto", interpolation="nearest")
    ax_seq.set_title(f"{g * g} tokens of {p * p} px x {C}")
    ax_seq.set_xlabel("pixel in the patch")
    ax_seq.set_ylabel("token index")
    for ax in (ax_img, ax_grid):
        ax.axis("off")
    strip = fig.add_subplot(grid_spec[1, :])
    tiles = rearrange(patches[0, :first], "n (c p1 p2) -> n p1 p2 c", c=C, p1=p)  # (first, p, p, C)
    tiles = F.pad(tiles, (0, 0, 0, 1, 0, 0), value=1.0)  # a white column after each tile
    strip.imshow(rearrange(tiles, "n p1 p2 c -> p1 (n p2) c"), interpolation="nearest")
    strip.set_xticks([(p + 1) * n + (p - 1) / 2 for n in range(first)], [str(n) for n in range(first)])
    strip.set_yticks([])
    strip.set_title(f"the first {first} of {g * g} tokens, in the order the encoder reads them")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


fig = show_patch_figure(image, patches, PATCH_SIZE, f"{SOURCE}, test image {index}")
figures.save(fig, FIGURES / "01_patches")
plt.show()

# %% [markdown]
# **What this shows.** The strip is the image's top rows laid end to end: the numbering runs along
# a row of patches and wraps to the next row, so an object that spans several grid rows becomes
# several separate bands of the sequence.
#
# <details><summary>Caveats</summary>
#
# Each token is drawn as $P^2$ coloured pixels, while the model reads its $P^2 C$ values channel
# by channel. A picture of an order is not a proof of it: the next cell checks it with numbers.
# </details>

# %% [markdown]
# Token $n$ must be the patch at grid row $\lfloor n / G \rfloor$ and column $n \bmod G$:

# %%
g = IMAGE_SIZE // PATCH_SIZE
for n in [0, 1, 7, 8, 37, 63]:
    row, col = divmod(n, g)
    crop = image[:, row * PATCH_SIZE:(row + 1) * PATCH_SIZE, col * PATCH_SIZE:(col + 1) * PATCH_SIZE]  # (3, p, p)
    assert torch.equal(patches[0, n], crop.flatten()), n
print(f"token n is the crop at (row n // {g}, column n % {g}): checked for 6 tokens")

# %% [markdown]
# **What this shows.** Neighbours in the image can be far apart in the sequence: token 1 sits
# beside token 0, but the patch below token 0 is token $G$. Nothing has been computed yet, only
# numbers moved.
#
# <details><summary>Caveats</summary>
#
# Row-major order is a convention (that of `Conv2d` and of every library used here); any fixed
# order works, as long as the position embeddings of notebook 02 are made for the same one.
# </details>

# %% [markdown]
# ## 3. The same cut in one line of einops
#
# `einops.rearrange` says the whole reshape/permute dance as a sentence: "split height into
# (grid rows, p1) and width into (grid columns, p2); make one axis of all patches and one axis
# of everything inside a patch". Both versions only *move* numbers, never add them, so they
# must agree **exactly** (`torch.equal`, not just close).

# %%
def patchify_einops(images: torch.Tensor, p: int) -> torch.Tensor:
    return rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=p, p2=p)  # (B, N, C*p*p)


torch.manual_seed(0)
random_images = torch.rand(4, 3, IMAGE_SIZE, IMAGE_SIZE)  # (4, 3, 32, 32)
by_reshape = patchify_reshape(random_images, PATCH_SIZE)
by_einops = patchify_einops(random_images, PATCH_SIZE)
assert torch.equal(by_reshape, by_einops)
assert torch.equal(patchify_einops(batch, PATCH_SIZE), patches)
print("reshape/permute == einops rearrange: bit for bit")

# %% [markdown]
# ## 4. The linear projection, and why it is a convolution
#
# Each flattened patch $x_p^n \in \mathbb{R}^{P^2 C}$ becomes a $D$-dimensional token through one
# matrix $E \in \mathbb{R}^{(P^2 C) \times D}$ and a bias $b$, **shared by all patches**:
#
# $$z^n = x_p^n E + b, \qquad n = 1, \dots, N ,$$
#
# an `nn.Linear(P*P*C, D)` applied to the `(B, N, P*P*C)` tensor. A
# `Conv2d(C, D, kernel_size=P, stride=P)` computes the same thing: its windows tile the image
# without overlap, so each output position takes the dot product of one patch with each of the
# $D$ kernels, plus a bias. Only the storage differs: the conv keeps its weight as $(D, C, P, P)$
# and returns a $(B, D, H/P, W/P)$ map that we flatten back into a sequence. Because we flattened
# each patch in $(c, p_1, p_2)$ order, one `rearrange` folds the Linear weight into the kernel:

# %%
torch.manual_seed(0)
linear = nn.Linear(3 * PATCH_SIZE ** 2, DIM)  # E and b, shared by all 64 patches
conv = nn.Conv2d(3, DIM, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)
with torch.no_grad():
    conv.weight.copy_(rearrange(linear.weight, "d (c p1 p2) -> d c p1 p2", c=3, p1=PATCH_SIZE))  # (D, C, P, P)
    conv.bias.copy_(linear.bias)

tokens_linear = linear(by_einops)  # (4, 64, 48)
feature_map = conv(random_images)  # (4, 48, 8, 8): one D-vector per grid cell
tokens_conv = rearrange(feature_map, "b d gh gw -> b (gh gw) d")  # (4, 64, 48), row-major like the patches
print(f"Linear over patches vs strided Conv2d: max |difference| = {max_diff(tokens_linear, tokens_conv):.2e}")
assert torch.allclose(tokens_linear, tokens_conv, rtol=RTOL, atol=ATOL)

# %% [markdown]
# The difference is not zero but float32 rounding (printed above): the two kernels add the same
# 48 products in a different order. Hence `torch.allclose` with `rtol = atol = 1e-5`: far above
# rounding, far below what a wrong weight layout gives. The next cell folds the weight as
# `"d (p1 p2 c) -> d c p1 p2"`, the wrong order:

# %%
wrong = nn.Conv2d(3, DIM, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)
with torch.no_grad():
    wrong.weight.copy_(rearrange(linear.weight, "d (p1 p2 c) -> d c p1 p2", c=3, p1=PATCH_SIZE))
    wrong.bias.copy_(linear.bias)
wrong_diff = max_diff(rearrange(wrong(random_images), "b d gh gw -> b (gh gw) d"), tokens_linear)
print(f"with the weight folded in the wrong order: max |difference| = {wrong_diff:.2e}")
assert wrong_diff > 1000 * ATOL  # the tolerance can tell a layout bug from rounding

# %% [markdown]
# **What this shows.** A `Conv2d` with kernel = stride = $P$ *is* a Linear layer on each flattened
# patch: the right weight layout matches to rounding, the wrong one misses by far more than the
# tolerance. The match needs each patch flattened as $(c, p_1, p_2)$, the layout of `Conv2d`'s
# weight.

# %% [markdown]
# ## 5. `vit_core.PatchEmbedding` is exactly this
#
# The library uses the convolution (one fused kernel, no reshape of the input). Given the
# Linear's weights it must produce the same tokens:

# %%
config = ViTConfig.cifar10_tiny()
patch_embed = PatchEmbedding(config)
print(patch_embed)
with torch.no_grad():
    patch_embed.proj.weight.copy_(rearrange(linear.weight, "d (c p1 p2) -> d c p1 p2", c=3, p1=PATCH_SIZE))
    patch_embed.proj.bias.copy_(linear.bias)
tokens_core = patch_embed(random_images)  # (4, 64, 48)
assert tokens_core.shape == (4, config.num_patches, config.dim)
assert torch.allclose(tokens_core, tokens_linear, rtol=RTOL, atol=ATOL)
assert torch.allclose(tokens_core, tokens_conv, rtol=RTOL, atol=ATOL)
print(f"vit_core.PatchEmbedding == Linear over patches: max |difference| = "
      f"{max_diff(tokens_core, tokens_linear):.2e}")

# %% [markdown]
# ## 6. Every shape, for CIFAR and for ViT-Base/16
#
# After the patch embedding the ViT prepends one learned **CLS token** (notebook 02) and adds
# position embeddings, so the encoder sees $T = N + 1$ tokens of width $D$. The table comes from
# the configs; the next cell checks it against real tensors from `ViT.embed`. For ViT-B/16 we
# **upsample our 32 px image to 224 px** (bicubic): blurry, but with exactly an ImageNet
# image's shapes.

# %%
def shape_row(name: str, cfg: ViTConfig) -> dict:
    return {"model": name, "image CxHxW": f"{cfg.in_channels}x{cfg.image_size}x{cfg.image_size}",
            "P": cfg.patch_size, "GxG": f"{cfg.grid_size}x{cfg.grid_size}",
            "N": cfg.num_patches, "P*P*C": cfg.patch_size ** 2 * cfg.in_channels,
            "T=N+1": cfg.seq_len, "D": cfg.dim}


def print_table(rows: list[dict]):
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(str(c).rjust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(str(r[c]).rjust(w) for c, w in zip(columns, widths)))


configs = {
    "tiny CIFAR-10 (32 px)": ViTConfig.cifar10_tiny(),
    "ViT-B/16 (224 px)": ViTConfig.vit_b_16()}
print_table([shape_row(name, cfg) for name, cfg in configs.items()])

# %%
image_224 = F.interpolate(batch, size=(224, 224), mode="bicubic", align_corners=False).clamp(0, 1)  # (1, 3, 224, 224)
for name, cfg in configs.items():
    model = ViT(cfg).eval()
    x = batch if cfg.image_size == IMAGE_SIZE else image_224
    with torch.no_grad():
        patch_tokens = model.patch_embed(x)  # (1, N, D)
        sequence = model.embed(x)  # (1, N + 1, D): CLS first, positions added
    assert patchify_einops(x, cfg.patch_size).shape == (1, cfg.num_patches, cfg.patch_size ** 2 * 3)
    assert patch_tokens.shape == (1, cfg.num_patches, cfg.dim)
    assert sequence.shape == (1, cfg.seq_len, cfg.dim)
    print(f"{name}: patch tokens (B, N, D) = {tuple(patch_tokens.shape)}, encoder input (B, T, D) = {tuple(sequence.shape)}")
    del model

# %% [markdown]
# The same picture at 224 px with 16 px patches: $14 \times 14 = 196$ patches of
# $16 \cdot 16 \cdot 3 = 768$ numbers. That equals ViT-B/16's width $D = 768$, a coincidence of this
# model, not a rule. Only every other patch of the first row and column is numbered, plus the last.

# %%
patches_224 = patchify_einops(image_224, 16)  # (1, 196, 768)
fig = show_patch_figure(image_224[0], patches_224, 16, first=14,
                        title=f"{SOURCE}, test image {index}, upsampled 32 -> 224 px (bicubic) for illustration")
figures.save(fig, FIGURES / "01_patches_224")
plt.show()

# %% [markdown]
# **What this shows.** The tensors have the table's shapes: $(B, N, D)$ out of the patch
# embedding and $(B, T, D)$ into the encoder, for both models; the same 32 px image is 64 tokens
# for the tiny model and 196 for ViT-B/16.
#
# <details><summary>Caveats</summary>
#
# The 224 px picture is an upsampled 32 px image: it shows the *shapes* of ViT-B/16's input, not
# a 224 px photograph. Both models are untrained.
# </details>
#
# ## 7. Patch size sets the sequence length, and attention pays for it quadratically
#
# Halving the patch side quadruples the number of patches, $N = (H/P)^2$. Self-attention
# (notebook 03) compares every token with every other, so each head in each layer builds a
# $T \times T$ matrix: the cost grows like $N^2 = H^4 / P^4$. The parameter count moves much
# less: only $E$ ($P^2 C \times D$) and the position table ($T \times D$) depend on $P$.
#
# We build the tiny ViT for every patch size that divides 32 px and **time** a forward pass of
# a batch of 8 images on this machine (fastest of a few runs; on a CPU, one thread's CPU time).

# %%
def time_forward(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Fastest of `repeats` times of model(x), in milliseconds.

    On the CPU we time one thread and count its CPU time (`time.thread_time`): on a shared
    machine, time spent waiting while another job holds the core does not count, so the numbers
    are comparable. The minimum is the run least disturbed by anything else. On a GPU we take
    wall time and synchronise around it.
    """
    times, threads = [], torch.get_num_threads()
    clock = time.perf_counter if x.is_cuda else time.thread_time
    if not x.is_cuda:
        torch.set_num_threads(1)
    with torch.inference_mode():
        model(x)  # warm-up: allocations, kernel selection
        for _ in range(repeats):
            if x.is_cuda:
                torch.cuda.synchronize()
            start = clock()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(clock() - start)
    torch.set_num_threads(threads)
    return 1000 * min(times)


TIMED_ON = env.hardware()
if DEVICE.type == "cpu":
    # time_forward counts one thread's CPU time, whatever torch's thread count is
    TIMED_ON = TIMED_ON.rsplit(", ", 1)[0] + ", CPU time of 1 thread"
cost_rows = []
x = random_images[:1].expand(TIMING_BATCH, -1, -1, -1).contiguous().to(DEVICE)  # (8, 3, 32, 32)
for p in [16, 8, 4, 2, 1]:
    cfg = ViTConfig.cifar10_tiny(patch_size=p)
    model = ViT(cfg).to(DEVICE).eval()
    cost_rows.append({"patch P": p, "grid GxG": f"{cfg.grid_size}x{cfg.grid_size}", "tokens T": cfg.seq_len,
                      "attn entries/head": cfg.seq_len ** 2,
                      "params": sum(t.numel() for t in model.parameters()),
                      "forward ms": round(time_forward(model, x, TIMING_REPEATS), 2)})
    del model
print(f"tiny ViT on {IMAGE_SIZE} px, batch {TIMING_BATCH}, measured on {TIMED_ON}:")
print_table(cost_rows)

# %% [markdown]
# The table's claims, checked: $T = (H/P)^2 + 1$, entries $= T^2$, parameters change by a small
# factor while attention entries change by thousands:

# %%
for r in cost_rows:
    assert r["tokens T"] == (IMAGE_SIZE // r["patch P"]) ** 2 + 1
    assert r["attn entries/head"] == r["tokens T"] ** 2
params = [r["params"] for r in cost_rows]
ms = {r["patch P"]: r["forward ms"] for r in cost_rows}
entries = [r["attn entries/head"] for r in cost_rows]
print(f"largest / smallest over the five patch sides: params x{max(params) / min(params):.2f}, "
      f"attention entries x{max(entries) / min(entries):,.0f}; forward time P=1 / P=16 x{ms[1] / ms[16]:.0f}, "
      f"P=1 / P=4 x{ms[1] / ms[4]:.0f}, P=8 / P=16 x{ms[8] / ms[16]:.2f}")
assert max(params) / min(params) < 2 and max(entries) / min(entries) > 1000
if DEVICE.type == "cpu":  # on a GPU these small batches mostly time kernel launches: printed only
    assert ms[1] > 5 * ms[4] and ms[2] > ms[8]

# %% [markdown]
# On a log-log plot, time against tokens, with dashed lines of slope 1 and 2 for reference:

# %%
tokens = np.array([r["tokens T"] for r in cost_rows], dtype=float)
millis = np.array([r["forward ms"] for r in cost_rows])
fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.8))
axes[0].loglog(tokens, millis, "o-", label="measured forward time")
for slope, style in [(1, ":"), (2, "--")]:
    axes[0].loglog(tokens, millis[-1] * (tokens / tokens[-1]) ** slope, "k" + style, lw=0.8,
                   label=f"slope {slope}")
for t, m, r in zip(tokens, millis, cost_rows):
    axes[0].annotate(f"P={r['patch P']}", (t, m), textcoords="offset points", xytext=(4, -12), fontsize=9)
axes[0].set(xlabel="tokens T = N+1", ylabel="ms per batch of 8", title=f"tiny ViT forward\n{TIMED_ON}")
axes[0].legend(fontsize=9)
axes[1].bar([str(r["patch P"]) for r in cost_rows], [r["attn entries/head"] for r in cost_rows])
axes[1].set_yscale("log")
axes[1].set_ylim(bottom=1)  # a log axis has no zero: start at 1 entry so every bar's height is its count
axes[1].set(xlabel="patch side P (px)", ylabel="entries per attention matrix", title="$T^2$ per head per layer")
fig.tight_layout()
figures.save(fig, FIGURES / "01_patch_size_cost")
plt.show()

# %% [markdown]
# **What this shows.** Fewer tokens stop paying off early: $P = 16$ has less than a third of
# $P = 8$'s tokens but saves far less than two thirds of its time (the ratio is printed above),
# because at a few tokens fixed overheads (MLPs, LayerNorms, Python) dominate.
# From $P = 4$ down the time climbs towards the slope-2 line of $T^2$, while the parameter count
# barely moves (the ratios are printed above).
#
# <details><summary>Caveats</summary>
#
# One machine's milliseconds are not another's: compare ratios. A GPU has larger fixed
# overheads, so its flat part lasts longer; training time is not measured. Smaller patches also
# see finer detail, which a timing cannot show: exercise 4 measures that side of the trade.
# </details>
#
# The same arithmetic at 224 px for published patch sides: /32, /16 and /14 (the ViT paper's
# B/32, B/16, L/16 and H/14) and /8 (DINO's ViT-S/8 and ViT-B/8, Caron et al. 2021). The counts
# depend only on $H$ and $P$; they are **computed from shapes**, not timed:

# %%
rows_224 = []
for p in [32, 16, 14, 8]:
    cfg = ViTConfig.vit_b_16(patch_size=p)
    rows_224.append({"patch P": p, "grid GxG": f"{cfg.grid_size}x{cfg.grid_size}", "tokens T": cfg.seq_len,
                     "attn entries/head": cfg.seq_len ** 2,
                     "vs /16": f"x{cfg.seq_len ** 2 / ViTConfig.vit_b_16().seq_len ** 2:.2f}"})
print_table(rows_224)
assert rows_224[1]["tokens T"] == 197  # the famous 196 patches + CLS of ViT-B/16

# %% [markdown]
# ## Summary
#
# - Patchify = split each spatial axis into (grid, inside-patch) and flatten; reshape/permute and
#   einops agree bit for bit.
# - A Linear over flattened patches and a `Conv2d(kernel=stride=P)` are the same map once the
#   weight is folded into $(D, C, P, P)$; `vit_core.PatchEmbedding` is that map.
# - The patch side is the main knob on cost: $N \propto P^{-2}$ tokens, $N^2 \propto P^{-4}$ attention
#   entries, while the parameter count hardly changes.
#
# Next, notebook 02: the tokens carry no idea *where* they came from, until we add position
# embeddings.
#
# ## Exercises
#
# 1. **Undo the cut.** Write `unpatchify(patches, p, h)`, the inverse of `patchify_einops`, and
#    check that a round trip gives back the images bit for bit.
# 2. **`F.unfold` is a patchify too.** `torch.nn.functional.unfold(x, kernel_size=P, stride=P)`
#    returns a $(B, P^2 C, N)$ tensor. Show that, transposed, it equals `patchify_einops` exactly.
# 3. **A bigger image, the same model.** ViT-B/16 is often fine-tuned at 384 px. Compute $G$,
#    $N$ and $T$ there, how many times more entries each attention matrix has than at 224 px,
#    and how many parameters the model gains (hint: only one tensor changes size). Check your
#    answers with `ViTConfig.vit_b_16(image_size=384)` and a model built on the `meta` device.
# 4. **The accuracy side of the trade** (open; for after notebook 06). Train the tiny ViT with
#    patch sides 2, 4 and 8 for a few epochs each, with the training loop of notebook 06 and
#    `ViTConfig.cifar10_tiny(patch_size=p)`, and compare test accuracy
#    and time per epoch. Which patch side would you pick on a CPU? No solution is given: the
#    answer depends on your budget.
#
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: split the token axis back into the grid and each patch vector back into its pixels.
def unpatchify(patches: torch.Tensor, p: int, h: int) -> torch.Tensor:
    return rearrange(patches, "b (gh gw) (c p1 p2) -> b c (gh p1) (gw p2)", gh=h // p, p1=p, p2=p)  # (B, C, H, W)


assert torch.equal(unpatchify(patchify_einops(random_images, PATCH_SIZE), PATCH_SIZE, IMAGE_SIZE), random_images)
print("unpatchify(patchify(x)) == x: bit for bit")

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: unfold lists each window's (c, p1, p2) values in a column, windows in row-major order.
unfolded = F.unfold(random_images, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)  # (B, P*P*C, N)
assert unfolded.shape == (4, 3 * PATCH_SIZE ** 2, (IMAGE_SIZE // PATCH_SIZE) ** 2)
assert torch.equal(unfolded.transpose(1, 2), patchify_einops(random_images, PATCH_SIZE))
print(f"F.unfold {tuple(unfolded.shape)}, transposed == patchify_einops: bit for bit")

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: G = 384/16 = 24, N = 576, T = 577; only the position table (T x D) grows.
cfg_224, cfg_384 = ViTConfig.vit_b_16(), ViTConfig.vit_b_16(image_size=384)
with torch.device("meta"):  # shapes only: no memory, no initialisation cost
    sizes = {c.image_size: sum(t.numel() for t in ViT(c).parameters()) for c in (cfg_224, cfg_384)}
ratio = cfg_384.seq_len ** 2 / cfg_224.seq_len ** 2
print(f"384 px: G={cfg_384.grid_size}, N={cfg_384.num_patches}, T={cfg_384.seq_len}; attention entries x{ratio:.2f}; "
      f"parameters +{sizes[384] - sizes[224]:,} ({sizes[224]:,} -> {sizes[384]:,})")
assert (cfg_384.grid_size, cfg_384.num_patches, cfg_384.seq_len) == (24, 576, 577)
assert sizes[384] - sizes[224] == (cfg_384.seq_len - cfg_224.seq_len) * cfg_224.dim
assert 8 < ratio < 9  # (577 / 197)^2
