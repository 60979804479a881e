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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/02_position_embeddings.ipynb)
#
# # 02 · The CLS token and position embeddings
#
# Notebook 01 turned an image into a sequence of patch tokens. Two things are still missing: a
# place to collect the answer (the **CLS token**), and any notion of **where** a patch came from.
#
# **What you will learn**
# - what the CLS token is and where it sits in the sequence;
# - that without position embeddings the encoder cannot tell an image from a patch-shuffled copy;
# - 1-D learned position embeddings versus fixed 2-D sine-cosine ones, and how to read the
#   position-similarity grid of the ViT paper (fig. 7, centre);
# - how much a trained model really uses the positions;
# - how to resize position embeddings for a new image size, and why the model must then be
#   trained a little more.
#
# Notation as in notebook 01: patch side $P$, grid side $G$, $N = G^2$ patches, $T = N + 1$
# tokens of width $D$.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %%
import copy
import inspect
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from einops import rearrange

from vit_core import ViT, ViTConfig, resize_pos_embed
from course import max_diff
from vit_core.attention_maps import patch_distances, pos_embed_similarity, shuffle_patches, sincos_pos_embed
from vit_core.data import TensorLoader, load_tensors, source_name, subset
from course import figures, recipes
from course import runs as course_runs

torch.manual_seed(0)
plt.rcParams.update({"font.size": 10})  # with figures at most ~8.6 in wide: >= 9 pt on screen (course.figures)
DEVICE, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above

# Hyper-parameters of this notebook, in one place.
ATOL = 1e-5              # float32 tolerance for "the same numbers" (observed differences ~1e-7)
RECIPE = recipes.RECIPES["improved-cpu"]  # the trained model of sections 5-6, from notebook 06
TEST_PER_CLASS = env.pick(full=None, smoke=100)    # test images per class for shuffling (None: all 1,000)
NEW_IMAGE_SIZE = 64      # pixels: the size we resize the trained model to in section 6
RESIZE_TEST_PER_CLASS = env.pick(full=100, smoke=20)  # test images per class at 64 px (4x the tokens: slow)
if DEVICE.type == "cpu":
    torch.set_num_threads(1)  # a shared CPU: one thread avoids threads waiting on each other

# %% [markdown]
# ## 1. The sequence the encoder really sees
#
# The ViT prepends one learned vector $x_\text{class}$ to the $N$ patch tokens and adds a
# learned position vector to every token (eq. 1 of the paper):
#
# $$z_0 = [\,x_\text{class};\; x_p^1 E;\; x_p^2 E;\; \dots;\; x_p^N E\,] + E_\text{pos},
# \qquad E_\text{pos} \in \mathbb{R}^{(N+1) \times D}.$$
#
# The CLS token belongs to no patch. It is the same vector for every image, so it carries no
# information at the start; through attention it gathers whatever the classification needs,
# and after the last block the head reads only that token: $\hat y = \text{head}(\text{LN}(z_L^0))$.
#
# `ViT.embed` builds $z_0$. We check it term by term on real CIFAR-10 images.

# %%
config = ViTConfig.cifar10_tiny()
model = ViT(config).to(DEVICE).eval()
test_images, test_labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)  # uint8 (10000, 3, 32, 32)
test_images, test_labels = subset(test_images, test_labels, per_class=TEST_PER_CLASS)
MEAN, STD = recipes.NORMALIZE[RECIPE.normalize]  # CIFAR-10's channel statistics, as the trained model saw them
test_loader = TensorLoader(test_images, test_labels, 500, train=False, mean=MEAN, std=STD, device=DEVICE)
# the files are sorted by class: draw 8 images at random across the classes
pick = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(0))[:8]
images, labels = next(iter(TensorLoader(test_images[pick], test_labels[pick], 8, train=False,
                                        mean=MEAN, std=STD, device=DEVICE)))  # (8, 3, 32, 32)
print(f"{source_name('cifar10', DATA)}: {len(test_labels):,} test images; "
      f"using a batch of {len(images)} drawn at random across the classes "
      f"({len(set(labels.tolist()))} different classes)")

with torch.no_grad():
    z0 = model.embed(images)  # (8, 65, 48)
    patch_tokens = model.patch_embed(images)  # (8, 64, 48)
print(f"patch tokens {tuple(patch_tokens.shape)} -> encoder input z0 {tuple(z0.shape)}")
assert z0.shape == (8, config.num_patches + 1, config.dim)
assert torch.allclose(z0[:, 0], (model.cls_token[:, 0] + model.pos_embed[:, 0]).expand(8, -1))  # same for every image
assert torch.allclose(z0[:, 1:], patch_tokens + model.pos_embed[:, 1:], atol=ATOL)

# %% [markdown]
# **What this shows.** Slot 0 of $z_0$ is the same vector for every image (CLS plus its position),
# and slot $n \ge 1$ is patch $n$'s token plus position vector $n$: exactly eq. 1.

# %% [markdown]
# ## 2. Without positions, the encoder sees a *set*
#
# The encoder (notebooks 03-04) only sees a set: nothing in it knows which token came first.
# Reorder its input tokens and its outputs come out in the same new order, unchanged otherwise
# (notebook 05 proves it, once attention and the block are known). So if we shuffle only the
# patch tokens and keep CLS first, the CLS output, the only thing the head reads, cannot change.
#
# We test this with the real `vit_core` encoder as a black box, feeding it the CLS token and the
# patch tokens *without* adding $E_\text{pos}$:

# %%
torch.manual_seed(1)
perm = torch.randperm(config.num_patches, device=DEVICE)  # a random reordering of the 64 patches
cls = model.cls_token.expand(len(images), -1, -1)  # (8, 1, 48)
tokens = torch.cat([cls, patch_tokens], dim=1)  # (8, 65, 48): CLS first, no positions
shuffled = torch.cat([cls, patch_tokens[:, perm]], dim=1)  # (8, 65, 48): same tokens, new order

with torch.no_grad():
    out = model.encoder(tokens)  # (8, 65, 48)
    out_shuffled = model.encoder(shuffled)  # (8, 65, 48)
cls_diff = max_diff(out[:, 0], out_shuffled[:, 0])
print(f"no positions: max |CLS output difference| after shuffling the patches = {cls_diff:.1e}")
assert torch.allclose(out[:, 0], out_shuffled[:, 0], atol=ATOL)  # CLS output unchanged
assert torch.allclose(out[:, 1:][:, perm], out_shuffled[:, 1:], atol=ATOL)  # patches: moved, not changed

# %% [markdown]
# Now add the position embeddings, as `ViT.embed` does. The patches move, but position
# vector $n$ stays at slot $n$, so every moved patch now gets a *different* position added:

# %%
with torch.no_grad():
    out_pos = model.encoder(tokens + model.pos_embed)  # (8, 65, 48)
    out_pos_shuffled = model.encoder(shuffled + model.pos_embed)  # (8, 65, 48)
pos_diff = max_diff(out_pos[:, 0], out_pos_shuffled[:, 0])
print(f"with positions: max |CLS output difference| after shuffling the patches = {pos_diff:.1e}")
print(f"fresh model: position vectors have standard deviation {model.pos_embed.std():.3f}, "
      f"patch tokens {patch_tokens.std():.3f}")
assert pos_diff > 10 * ATOL and pos_diff > 100 * cls_diff

# %% [markdown]
# **What this shows.** Without positions the CLS output does not change at all (rounding only);
# with them it does, but only a little in this fresh model: its position vectors are small next
# to the patch tokens (both printed above), and an untrained encoder barely depends on which
# token is where. Section 5 repeats this with a trained model.
#
# The same on pictures: a CIFAR-10 image and the same image with its 64 patches shuffled by
# `vit_core.attention_maps.shuffle_patches` (two `rearrange`s: image -> patches, reorder, patches
# -> image). A copy of the model whose position table is zero gives **identical** logits for both.

# %%
scrambled = shuffle_patches(images, config.patch_size, perm)  # (8, 3, 32, 32)
no_position_model = copy.deepcopy(model)
with torch.no_grad():
    no_position_model.pos_embed.zero_()
    logits_np, logits_np_scrambled = no_position_model(images), no_position_model(scrambled)
    logits, logits_scrambled = model(images), model(scrambled)
print(f"zero positions: max |logit difference| = {max_diff(logits_np, logits_np_scrambled):.1e}")
print(f"with positions: max |logit difference| = {max_diff(logits, logits_scrambled):.1e}")
assert torch.allclose(logits_np, logits_np_scrambled, atol=ATOL)

# %%
def to_display(x: torch.Tensor) -> torch.Tensor:
    """Normalised (C, H, W) -> (H, W, C) in [0, 1] for imshow."""
    mean = torch.tensor(test_loader.mean.flatten().tolist()).view(3, 1, 1)
    std = torch.tensor(test_loader.std.flatten().tolist()).view(3, 1, 1)
    return (x.cpu() * std + mean).clamp(0, 1).permute(1, 2, 0)


fig, axes = plt.subplots(1, 2, figsize=(5, 2.9))
for ax, img, title in zip(axes, [images[0], scrambled[0]], ["original", f"{config.num_patches} patches shuffled"]):
    ax.imshow(to_display(img))
    ax.set_title(title)
    ax.axis("off")
fig.suptitle(f"{source_name('cifar10', DATA)}:\nidentical logits without positions", fontsize=9)
fig.tight_layout()
figures.save(fig, FIGURES / "02_shuffled_patches")
plt.show()

# %% [markdown]
# **What this shows.** To the model without positions the two pictures are the same input (logits
# equal to rounding, printed above), although to us the right one is no longer a picture of
# anything: what we read as an object is in the arrangement, which such a model cannot see.
#
# <details><summary>Caveats</summary>
#
# The fresh model *with* positions changes its logits only a little (also printed above);
# whether a trained model uses the layout is measured in section 5. The shuffle keeps every
# patch whole, so colour and texture inside a patch survive it.
# </details>

# %% [markdown]
# ## 3. Two kinds of position embedding
#
# **1-D learned** (what the ViT uses): $E_\text{pos}$ is a table of $T \times D$ free parameters,
# one row per slot, trained like any weight. Nothing in it says that slot 9 sits *below* slot 1:
# the 2-D layout has to be learned from data. The paper (appendix D.4) found that leaving
# positions out clearly hurt, while 1-D, 2-D and relative embeddings ended up close together.
#
# **2-D sine-cosine** (fixed, no parameters): split the $D$ channels into four quarters and write a
# patch's row $r$ and column $c$ as waves of $D/4$ frequencies $\omega_k = 10000^{-k/(D/4)}$:
#
# $$\text{pe}(r, c) = \big[\sin(\omega_k r),\; \cos(\omega_k r),\; \sin(\omega_k c),\; \cos(\omega_k c)\big]_{k}.$$
#
# From $\sin^2 + \cos^2 = 1$ and $\cos a \cos b + \sin a \sin b = \cos(a - b)$: every vector has
# length $\sqrt{D/2}$, and the dot product of two positions,
# $\sum_k \cos(\omega_k \Delta r) + \cos(\omega_k \Delta c)$, depends only on their **offset**
# $(\Delta r, \Delta c)$. `vit_core.attention_maps.sincos_pos_embed` is that formula in code:

# %%
print(inspect.getsource(sincos_pos_embed))

# %%
g = config.grid_size
sincos = sincos_pos_embed(g, config.dim)  # (64, 48)
norms = sincos.norm(dim=1)
print(f"sin-cos table {tuple(sincos.shape)}; every norm = {norms.min():.4f}..{norms.max():.4f}, "
      f"sqrt(D/2) = {math.sqrt(config.dim / 2):.4f}")
assert torch.allclose(norms, torch.full_like(norms, math.sqrt(config.dim / 2)), atol=1e-4)

# %% [markdown]
# ## 4. The position-similarity grid
#
# To look at a table of 64 vectors in 48 dimensions, the ViT paper compares every position with
# every other by cosine similarity,
# $S_{ij} = e_i \cdot e_j / (\lVert e_i \rVert\, \lVert e_j \rVert)$, and draws, for each patch
# position $i$ (laid out on the $8 \times 8$ grid), a small $8 \times 8$
# map of $S_{ij}$ over all $j$. If the table encodes the 2-D layout, each small map is bright at
# its own position and fades with distance. We compute $S$ inline and check it against
# `vit_core.attention_maps.pos_embed_similarity`, which later notebooks use.

# %%
def similarity_grid(pos: torch.Tensor) -> torch.Tensor:
    """(g*g, D) patch position embeddings -> (g, g, g, g) cosine similarities."""
    unit = F.normalize(pos.float(), dim=-1)  # (g*g, D), unit length
    grid = math.isqrt(pos.shape[0])
    return rearrange(unit @ unit.T, "(i j) (k l) -> i j k l", i=grid, k=grid)  # (g, g, g, g)


sim_sincos = similarity_grid(sincos)
assert torch.allclose(sim_sincos, pos_embed_similarity(sincos), atol=ATOL)
# with a leading CLS row, vit_core drops it: the grid covers patch positions only
assert torch.allclose(similarity_grid(model.pos_embed[0, 1:].detach().cpu()),
                      pos_embed_similarity(model.pos_embed.cpu()), atol=ATOL)


def plot_similarity_grid(sim: torch.Tensor, title: str):
    """Fig. 7 (centre) of the ViT paper: one small similarity map per patch position.

    The g x g maps are tiled into one mosaic (a one-pixel gap between maps), one imshow. Every
    grid is drawn on the same colour scale, the full range of a cosine similarity (-1 to 1), so
    grids of different tables can be compared colour for colour.
    """
    g = sim.shape[0]
    padded = F.pad(sim.cpu(), (0, 1, 0, 1), value=float("nan"))  # (g, g, g+1, g+1): NaN gap, drawn blank
    mosaic = rearrange(padded, "i j k l -> (i k) (j l)")[:-1, :-1]  # (g*(g+1)-1, g*(g+1)-1)
    fig, ax = plt.subplots(figsize=(6, 5.6))
    shown = ax.imshow(mosaic, vmin=-1, vmax=1, cmap="viridis")
    centres = [i * (g + 1) + (g - 1) / 2 for i in range(g)]
    ax.set_xticks(centres, [str(i + 1) for i in range(g)])
    ax.set_yticks(centres, [str(i + 1) for i in range(g)])
    ax.tick_params(length=0)
    ax.set(xlabel="input patch column", ylabel="input patch row")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, shrink=0.8, label="cosine similarity")
    return fig


fig = plot_similarity_grid(sim_sincos, "2-D sine-cosine position embeddings (fixed)")
figures.save(fig, FIGURES / "02_pos_similarity_sincos")
plt.show()

# %% [markdown]
# **What this shows.** Every small map is the same pattern, shifted: brightest at its own patch,
# with a bright cross along its row and column (half of the channels see only the row, half only
# the column), as the offset argument predicts. All similarities are high (range printed below),
# so on the full −1 to 1 scale, shared by all three grids of this notebook, the differences are
# faint; the layout is in their *order*. Both claims, checked:

# %%
flat = rearrange(sim_sincos, "i j k l -> (i j) (k l)")  # (64, 64)
distance = patch_distances(g, 1)  # (64, 64): distance between patch centres, in patches
rows, cols = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
offsets = torch.stack([rows.flatten(), cols.flatten()], 1)  # (64, 2): (row, column) of each patch
delta = offsets[:, None] - offsets[None]  # (64, 64, 2): offset between every pair
for dr, dc in [(0, 1), (1, 0), (2, -3), (5, 5)]:
    same_offset = flat[(delta[..., 0] == dr) & (delta[..., 1] == dc)]
    assert same_offset.max() - same_offset.min() < 1e-5, (dr, dc)  # one value per offset
nearest = flat.masked_fill(torch.eye(g * g, dtype=torch.bool), -2).argmax(dim=1)  # most similar other patch
assert (distance[torch.arange(g * g), nearest] == 1).all()
print("sin-cos: similarity depends only on the offset; every patch's most similar other patch is a neighbour")
off_diagonal = flat[~torch.eye(g * g, dtype=torch.bool)]  # similarities of two different patches
print(f"sin-cos: similarities of two different patches range from {off_diagonal.min():.2f} to {off_diagonal.max():.2f}")
assert off_diagonal.min() > 0.5  # all high: the top quarter of the scale -1..1

# %% [markdown]
# **What this shows.** A fixed sine-cosine table has the 2-D layout built in, with no training:
# similarity depends only on the offset, and every patch is most like a neighbour.

# %% [markdown]
# Now the tiny ViT's *learned* table, fresh from initialisation: independent random rows, so
# nearly orthogonal vectors.

# %%
def position_table(model: ViT) -> torch.Tensor:
    return model.pos_embed[0, 1:].detach().cpu()  # (g*g, D): the CLS slot has no grid position


def near_far(sim: torch.Tensor) -> tuple[float, float]:
    """Mean cosine similarity of position pairs 1 patch apart and of pairs >= 4 patches apart."""
    flat = rearrange(sim, "i j k l -> (i j) (k l)")
    dist = patch_distances(sim.shape[0], 1)
    return flat[dist == 1].mean().item(), flat[dist >= 4].mean().item()


sim_init = similarity_grid(position_table(model))
init_near, init_far = near_far(sim_init)
print(f"fresh learned table: mean similarity of neighbours {init_near:+.3f}, of patches >= 4 apart {init_far:+.3f}")
assert abs(init_near - init_far) < 0.05  # no layout: neighbours are no more alike than distant patches
fig = plot_similarity_grid(sim_init, "learned 1-D position embeddings, fresh initialisation")
figures.save(fig, FIGURES / "02_pos_similarity_init")
plt.show()

# %% [markdown]
# **What this shows.** A fresh learned table knows nothing about the grid: each small map is one
# bright pixel on noise, and neighbours are no more alike than distant patches (both means
# printed above are near 0). Any layout in the trained table below was learned from images.

# %% [markdown]
# ## 5. A trained model: the layout appears, and how much it is used
#
# From here on: a model trained in notebook 06; there you will see how. It is the tiny ViT
# trained on CIFAR-10 from scratch, shipped in `data/checkpoints/` and loaded by `course.runs`.

# %%
trained, record = course_runs.get(RECIPE, retrain=False, data_root=DATA, device=DEVICE)  # shipped
trained = trained.to(DEVICE).eval()
print(f"trained model: {course_runs.describe(record)}")

# %% [markdown]
# The similarity grid of the trained table, to compare with the fresh one above. (The paper's
# figure comes from ViT-L/32, trained far longer on far more data.)

# %%
sim_trained = similarity_grid(position_table(trained))
trained_near, trained_far = near_far(sim_trained)
print(f"trained learned table: neighbours {trained_near:+.3f}, patches >= 4 apart {trained_far:+.3f} "
      f"(fresh: {init_near:+.3f}, {init_far:+.3f})")
assert trained_near - trained_far > init_near - init_far  # training made neighbours more alike
fig = plot_similarity_grid(sim_trained, f"learned 1-D position embeddings, trained\n(notebook 06, "
                                        f"{len(record['history'])} epochs)")
figures.save(fig, FIGURES / "02_pos_similarity_trained")
plt.show()

# %% [markdown]
# **What this shows.** Nothing told the model that slot 9 lies below slot 1, yet its table now
# encodes the grid: each small map is bright around its own patch, and neighbours are far more
# alike than patches 4 or more apart (means printed above). Whether the model *relies* on this is
# measured below; first all three tables on one axis, mean similarity against distance:

# %%
def similarity_by_distance(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = rearrange(sim, "i j k l -> (i j) (k l)")
    dist = patch_distances(sim.shape[0], 1).round(decimals=3)
    values = dist.unique()[1:]  # skip distance 0 (a patch with itself)
    return values, torch.stack([flat[dist == d].mean() for d in values])


fig, ax = plt.subplots(figsize=(6, 3.6))
for sim, label in [(sim_sincos, "2-D sine-cosine (fixed)"), (sim_init, "learned, fresh"),
                   (sim_trained, "learned, trained (notebook 06)")]:
    d, s = similarity_by_distance(sim)
    ax.plot(d, s, "o-", ms=3, label=label)
ax.set(xlabel="distance between patches (in patches)", ylabel="mean cosine similarity",
       title="position similarity against distance", ylim=(-1, 1))
ax.axhline(0, color="k", lw=0.5)
ax.legend(fontsize=9)
fig.tight_layout()
figures.save(fig, FIGURES / "02_pos_similarity_vs_distance")
plt.show()

# %% [markdown]
# **What this shows.** Only the trained table cares much about distance: it falls from clearly
# positive next door to around or below 0 far away, while the sine-cosine table stays high at
# every distance and the fresh table is flat at 0.
#
# <details><summary>Caveats</summary>
#
# Averages over all pairs at one distance hide the row and column structure of the grids.
# </details>
#
# Does the trained model *use* the positions? First the experiment of section 2 again: shuffle
# the patch tokens, keep the position table in place, and compare the CLS outputs.

# %%
with torch.no_grad():
    trained_tokens = torch.cat([trained.cls_token.expand(len(images), -1, -1), trained.patch_embed(images)], 1)  # (8, T, D)
    trained_shuffled = torch.cat([trained_tokens[:, :1], trained_tokens[:, 1:][:, perm]], 1)  # (8, T, D)
    out_t = trained.encoder(trained_tokens + trained.pos_embed)  # (8, 1 or T, D): CLS row first
    out_t_shuffled = trained.encoder(trained_shuffled + trained.pos_embed)
trained_diff = max_diff(out_t[:, 0], out_t_shuffled[:, 0])
print(f"max |CLS output difference| after shuffling: fresh model {pos_diff:.1e}, trained model {trained_diff:.1e}")
assert trained_diff > 10 * pos_diff

# %% [markdown]
# The output moves far more than in the fresh model. But does the *answer* change? Accuracy on
# test images with their patches shuffled (one fixed permutation; every patch moved whole, so
# only its position changes), against the intact images:

# %%
def accuracy(net, loader, transform=lambda x: x) -> float:
    """Fraction of `loader`'s images that `net` classifies correctly after `transform`."""
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (net(transform(x)).argmax(-1) == y).sum().item()
    return correct / len(loader.labels)


def shuffle(x: torch.Tensor) -> torch.Tensor:
    return shuffle_patches(x, config.patch_size, perm)


intact, shuffled_acc = accuracy(trained, test_loader), accuracy(trained, test_loader, shuffle)
print(f"{len(test_labels):,} test images, {source_name('cifar10', DATA)}; chance is 10%")
print(f"  intact:           {intact:.1%} test accuracy")
print(f"  patches shuffled: {shuffled_acc:.1%} test accuracy ({100 * (intact - shuffled_acc):.1f} points lost)")
assert shuffled_acc < intact
assert shuffled_acc > 0.2  # well above chance

# %% [markdown]
# **What this shows.** The trained model keeps a good part of its accuracy with its patches
# shuffled, far above chance: much of what it knows comes from the patches as a *bag* (colours,
# textures, parts). The points lost are at most what it gets from their arrangement, since
# part of the drop is the cost of an unfamiliar input (see the caveat).
#
# <details><summary>Caveats</summary>
#
# One model, one permutation. Shuffled images are also far from anything seen in training, so
# the drop mixes "no layout" with "unfamiliar input".
# </details>
#
# ## 6. A new image size: resizing the position table
#
# Everything in the ViT is independent of the number of tokens *except* $E_\text{pos}$, which has
# exactly $T = N + 1$ rows. A 64 px image makes a $16 \times 16$ grid for a model trained at 32 px
# with $P = 4$, but the model owns only the vectors of an $8 \times 8$ grid. The paper's fix
# (section "Fine-tuning and higher resolution"): view the $N$ patch vectors as a $G \times G$
# image with $D$ channels, resize it (here bicubic) to the new grid, and keep the CLS vector,
# which has no place on the grid. Inline, one `rearrange`, one `F.interpolate` and one `cat`; it
# must equal `vit_core.resize_pos_embed`:

# %%
g = config.grid_size
new_grid = NEW_IMAGE_SIZE // config.patch_size
old_pos = trained.pos_embed.detach().cpu()  # (1, T, D)
as_image = rearrange(old_pos[:, 1:], "1 (gh gw) d -> 1 d gh gw", gh=g)  # (1, D, G, G)
resized = F.interpolate(as_image, size=(new_grid, new_grid), mode="bicubic", align_corners=False)  # (1, D, 16, 16)
inline_pos = torch.cat([old_pos[:, :1], rearrange(resized, "1 d gh gw -> 1 (gh gw) d")], dim=1)  # (1, 257, D)
core_pos = resize_pos_embed(old_pos, new_grid)
print(f"position table {tuple(old_pos.shape)} -> {tuple(core_pos.shape)}")
assert core_pos.shape == (1, 1 + new_grid ** 2, config.dim)
assert torch.allclose(inline_pos, core_pos, atol=ATOL)
assert torch.equal(core_pos[:, 0], old_pos[:, 0])  # the CLS position is kept untouched

# %% [markdown]
# The model refuses the wrong size with a message that says what to do, and accepts it after
# `ViT.resize_image_size`:

# %%
big_images = F.interpolate(images, size=(NEW_IMAGE_SIZE, NEW_IMAGE_SIZE), mode="bilinear",
                           align_corners=False)  # (8, 3, 64, 64): CIFAR upsampled, no bigger images offline
try:
    trained(big_images)
    raise AssertionError("a 32 px model must reject 64 px images")
except ValueError as error:
    print("before resizing:", error)

resized_model = copy.deepcopy(trained).resize_image_size(NEW_IMAGE_SIZE)
with torch.no_grad():
    big_logits = resized_model(big_images)  # (8, 10)
print(f"after resizing: pos_embed {tuple(resized_model.pos_embed.shape)}, logits {tuple(big_logits.shape)}")
assert resized_model.config.grid_size == new_grid and resized_model.config.seq_len == 1 + new_grid ** 2
assert torch.equal(resized_model.pos_embed.detach().cpu(), core_pos)
assert torch.equal(resized_model.pos_embed[:, 0], trained.pos_embed[:, 0])

# %% [markdown]
# Before and after: three channels of the table drawn as images (each divided by its largest
# absolute value in the trained table, the same before and after: red positive, blue negative),
# and the similarity map of the position at the same place in the image (cell (2, 5) at 8x8,
# cell (5, 11) at 16x16), on the scale −1 to 1.

# %%
def similarity_map(pos: torch.Tensor, row: int, col: int) -> torch.Tensor:
    return similarity_grid(pos)[row, col]  # (g, g)


new_table = core_pos[0, 1:]  # (256, D)
channels = [0, 1, 2]
fig, axes = plt.subplots(2, len(channels) + 1, figsize=(8.6, 5.6))
for row_axes, table, grid, (r, c), name in [(axes[0], old_pos[0, 1:], g, (2, 5), f"{g}x{g}, trained"),
                                            (axes[1], new_table, new_grid, (5, 11), f"{new_grid}x{new_grid}, bicubic")]:
    planes = rearrange(table, "(gh gw) d -> d gh gw", gh=grid)  # (D, grid, grid)
    for ax, ch in zip(row_axes, channels):
        limit = old_pos[0, 1:, ch].abs().max().item()  # one scale per channel, shared by both rows
        channel_shown = ax.imshow(planes[ch] / limit, cmap="coolwarm", vmin=-1, vmax=1)
        ax.set_title(f"{name}\nchannel {ch}", fontsize=9)
    sim_shown = row_axes[-1].imshow(similarity_map(table, r, c), vmin=-1, vmax=1)
    row_axes[-1].plot(c, r, "r+", ms=8)
    row_axes[-1].set_title(f"{name}\nsimilarity to ({r}, {c})", fontsize=9)
    for ax in row_axes:
        ax.set_xticks([])
        ax.set_yticks([])
fig.colorbar(sim_shown, ax=axes[:, -1], shrink=0.8, label="cosine similarity")
fig.colorbar(channel_shown, ax=axes[:, :-1], orientation="horizontal", fraction=0.05, pad=0.04,
             label="channel value / its largest |value| at 8x8 (red +, blue −)")
figures.save(fig, FIGURES / "02_pos_resize")
plt.show()

# %%
before = similarity_map(old_pos[0, 1:], 2, 5)  # (8, 8)
after = similarity_map(new_table, 5, 11)  # (16, 16)
after_pooled = F.avg_pool2d(after[None, None], 2)[0, 0]  # (8, 8): the 16x16 map averaged back to 8x8
corr = torch.corrcoef(torch.stack([before.flatten(), after_pooled.flatten()]))[0, 1].item()
print(f"correlation of the similarity map before and after resizing (pooled to 8x8): {corr:.3f}")
assert corr > 0.5

# %% [markdown]
# **What this shows.** The resized table keeps the layout of the trained one: the same pattern on
# a finer grid (correlation printed above).
#
# <details><summary>Caveats</summary>
#
# It does not show that the model works at the new size: the interpolated vectors between old
# grid points were never seen in training.
# </details>
#
# We measure it on a subset of the test images (so the 32 px accuracy differs from the record's,
# which used all of them) upsampled to 64 px: the resized model as it is, and after a short extra
# training at 64 px of all weights, as notebook 06 will teach (its settings are in the next cell).

# %%
from vit_core.train import TrainConfig, evaluate, fit  # notebook 06's training loop

FINE_TUNE = TrainConfig(epochs=1, lr=3e-4, warmup_epochs=0.1, weight_decay=0.05,  # see notebook 06
                        max_steps_per_epoch=env.pick(full=40, smoke=4))  # steps of FINE_TUNE_BATCH images
FINE_TUNE_BATCH, FINE_TUNE_PER_CLASS = 64, env.pick(full=300, smoke=30)  # training images at 64 px
resize_images, resize_labels = subset(*load_tensors("cifar10", "test", DATA, download=DOWNLOAD),
                                      per_class=RESIZE_TEST_PER_CLASS)
small_loader = TensorLoader(resize_images, resize_labels, 500, train=False, mean=MEAN, std=STD, device=DEVICE)
big_loader = TensorLoader(resize_images, resize_labels, 500, train=False, image_size=NEW_IMAGE_SIZE,
                          mean=MEAN, std=STD, device=DEVICE)
ft_images, ft_labels = subset(*load_tensors("cifar10", "train", DATA, download=DOWNLOAD), per_class=FINE_TUNE_PER_CLASS)
ft_loader = TensorLoader(ft_images, ft_labels, FINE_TUNE_BATCH, train=True, image_size=NEW_IMAGE_SIZE,
                         mean=MEAN, std=STD, device=DEVICE)
at_32 = evaluate(trained, small_loader)["acc"]
before_ft = evaluate(resized_model, big_loader)["acc"]
fine_tuned = copy.deepcopy(resized_model)
torch.manual_seed(0)
fit(fine_tuned, ft_loader, None, FINE_TUNE, device=DEVICE, progress=False, verbose=False)
after_ft = evaluate(fine_tuned.eval(), big_loader)["acc"]
print(f"{len(resize_labels):,} test images of {source_name('cifar10', DATA)} (a subset, "
      f"{RESIZE_TEST_PER_CLASS} per class):")
for name, acc in [("32 px, the trained model", at_32), (f"{NEW_IMAGE_SIZE} px, table resized, no fine-tuning", before_ft),
                  (f"{NEW_IMAGE_SIZE} px, after {FINE_TUNE.max_steps_per_epoch} fine-tuning steps of {FINE_TUNE_BATCH} images",
                   after_ft)]:
    print(f"  {name:<50} {acc:6.1%}")
assert before_ft < at_32  # resizing alone does not carry the accuracy over
assert after_ft > before_ft  # a little training at the new size recovers part of it

# %% [markdown]
# **What this shows.** Resizing the table makes the model *run* at the new size, not *work*
# there: accuracy falls far below the 32 px number, and a short training at 64 px brings much of
# it back. This is why the paper, and every library that resizes position embeddings, fine-tunes
# afterwards.
#
# <details><summary>Caveats</summary>
#
# The extra training updates every weight, not only the table, so it also adapts the patch
# embedding to the upsampled patches; the two effects are not separated here, and some of any
# gain would come from more training at any size.
# </details>

# %% [markdown]
# ## Summary
#
# - The encoder input is $[x_\text{class}; x_p E] + E_\text{pos}$; the head reads only the CLS slot.
# - Without $E_\text{pos}$ the encoder sees a set: a patch-shuffled image gives exactly the same
#   CLS output and logits. With $E_\text{pos}$ it does not.
# - 2-D sine-cosine embeddings encode the layout by construction; learned 1-D embeddings start as
#   noise and acquire the layout from data.
# - What survives shuffling a trained model's patches comes from the patches as a bag; the drop
#   bounds, from above, what it gets from their layout.
# - `resize_pos_embed` / `ViT.resize_image_size` interpolate the patch positions and keep CLS;
#   the resized model must be trained further at the new size.
#
# Next, notebook 03: the attention that mixes these tokens.
#
# ## Exercises
#
# 1. **Zero the trained table.** Set the trained model's position table to zero and measure its
#    accuracy on intact and on patch-shuffled images. What does section 2 predict about the two
#    numbers, and how do they compare with the trained model's?
# 2. **Swap in sine-cosine.** Replace the trained table's patch rows by the 2-D sine-cosine
#    table, rescaled to the trained rows' average norm. Is a layout-encoding table enough, or
#    does the model need *its own* table?
# 3. **Who is most alike?** For every patch of the trained table, find the other patch whose
#    position vector is most similar. What share of these are among its 8 neighbours (1 or
#    $\sqrt 2$ patches away), against the share a random choice would give?
#
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: without positions the model is blind to order, so both numbers must agree.
blind = copy.deepcopy(trained)
with torch.no_grad():
    blind.pos_embed.zero_()
blind_intact, blind_shuffled = accuracy(blind, small_loader), accuracy(blind, small_loader, shuffle)
print(f"position table zeroed: intact {blind_intact:.1%}, shuffled {blind_shuffled:.1%} "
      f"(trained model on the same {len(resize_labels):,} images: {at_32:.1%})")
assert abs(blind_intact - blind_shuffled) <= 0.002  # identical logits up to float rounding
assert blind_intact < at_32

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: a table with the right layout but the wrong vectors.
swapped = copy.deepcopy(trained)
learned_rows = swapped.pos_embed.data[0, 1:]  # (N, D)
with torch.no_grad():
    scale = learned_rows.norm(dim=1).mean() / sincos.norm(dim=1).mean()
    swapped.pos_embed[0, 1:] = sincos.to(learned_rows) * scale
swapped_acc = accuracy(swapped, small_loader)
print(f"sine-cosine table in place of the learned one: {swapped_acc:.1%} (own table {at_32:.1%})")
assert swapped_acc < at_32  # the model was trained with its own table and needs it

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: the most similar other position, and how often it is a neighbour.
flat_trained = rearrange(sim_trained, "i j k l -> (i j) (k l)").masked_fill(torch.eye(g * g, dtype=torch.bool), -2)
most_alike = flat_trained.argmax(dim=1)  # (N,)
is_neighbour = (patch_distances(g, 1) - 1.2).abs() < 0.3  # 1 or sqrt(2) patches away
share = is_neighbour[torch.arange(g * g), most_alike].float().mean().item()
random_share = is_neighbour.float().sum().item() / (g * g * (g * g - 1))
print(f"most similar other position is a neighbour for {share:.0%} of the patches; a random pick: {random_share:.0%}")
assert share > 2 * random_share
