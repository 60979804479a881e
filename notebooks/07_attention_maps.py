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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/07_attention_maps.ipynb)
#
# # 07 · What does the trained ViT look at?
#
# Attention weights are the one part of a Transformer that comes with a built-in picture: every
# token says how much it reads from every other token. This notebook opens the model trained in
# notebook 06 and asks three questions the ViT paper (Dosovitskiy et al., 2021) asked: where
# does the classification token look (its fig. 6 and appendix D.8), how far does each head look
# (fig. 7, right), and what did the position embeddings learn (fig. 7, centre)?
#
# **What you will learn**
# - how to read the raw CLS attention of each head, and why it is not the whole story;
# - attention rollout (Abnar & Zuidema, 2020), which follows attention through all layers and the
#   residual connections, built by hand and then checked against `vit_core.attention_maps`;
# - the *mean attention distance* of every head and layer, in pixels, as in the paper's fig. 7 (right);
# - how training turns random position embeddings into a map of the image grid.

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %% [markdown]
# The model is notebook 06's `improved-cpu` run, shipped in `data/checkpoints/` with the record
# of its training (printed below). In the smoke profile, if no checkpoint is shipped, a
# scaled-down run stands in and says so: its maps would be those of a barely trained network.

# %%
import matplotlib.pyplot as plt
import torch
from matplotlib.colors import PowerNorm
import torch.nn.functional as F
from einops import rearrange

from vit_core import ViT, ViTConfig, from_torchvision
from vit_core.attention_maps import (attention_rollout, cls_attention, mean_attention_distance,
                                     patch_distances, pos_embed_similarity, relevance_to_image)
from vit_core.data import (CIFAR10_CLASSES, IMAGENET_MEAN, IMAGENET_STD, TensorLoader, load_tensors,
                           source_name, subset)
from vit_core.train import TrainConfig, evaluate, fit
from course import figures, pretrained, recipes
from course import runs as course_runs

device, DATA, DOWNLOAD, FIGURES = here.device, here.data, here.downloads, here.figures  # what setup() chose above
RECIPE = recipes.RECIPES["improved-cpu"]  # notebook 06's trained model
STATS_PER_CLASS = env.pick(full=100, smoke=20)  # test images per class for the distance statistics
SHOW_CLASSES = ("airplane", "automobile", "bird", "cat", "horse", "ship")  # one test image of each

# %% [markdown]
# ## The model from notebook 06
#
# The shipped checkpoint holds the weights and the model config; its JSON record holds how it
# was trained. For comparisons with an *untrained* network, a fresh model of the same shape is
# initialised here (seed 0): the question is what training changed, not what one particular
# random start looked like.

# %%
test_images, test_labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)
DATASET = source_name("cifar10", DATA)
model, record = course_runs.get(RECIPE, retrain=False, data_root=DATA, device=device)  # shipped, or trained here
ORIGIN = "notebook 06's " + course_runs.describe(record)  # says so when a smoke run stands in
config = model.config
model = model.to(device).eval()
torch.manual_seed(0)
initial = ViT(config).to(device).eval()  # the same shape, untrained
init_pos_embed = initial.pos_embed.detach().cpu()
print(f"model: {ORIGIN}\n       {config.dim}-dim, {config.depth} blocks x {config.heads} heads, "
      f"{config.grid_size}x{config.grid_size} patches of {config.patch_size} px")

# %% [markdown]
# ## Raw CLS attention, one map per head
#
# In block $l$, head $h$ computes $W = \mathrm{softmax}(QK^\top/\sqrt{d_h})$, a $T \times T$
# matrix whose row $i$ says how much token $i$ reads from each token. The classifier only looks
# at the CLS token (position 0), so row 0 of the **last** block, without its own column, is a
# first guess at "where the model looks": one weight per patch, $8 \times 8$ here, which we
# upsample to 32 px and lay over the image.

# %%
show_idx = torch.stack([(test_labels == CIFAR10_CLASSES.index(c)).nonzero()[0, 0] for c in SHOW_CLASSES])
show_loader = TensorLoader(test_images[show_idx], test_labels[show_idx], len(show_idx), train=False, device=device,
                           **dict(zip(("mean", "std"), recipes.NORMALIZE[RECIPE.normalize])))
x, y = next(iter(show_loader))  # (6, 3, 32, 32) normalised, as the model saw them in training
with torch.no_grad():
    logits, attentions = model(x, return_attention=True)  # attentions: depth x (B, heads, T, T)
predicted = logits.argmax(-1).cpu()
raw = cls_attention(attentions)  # (B, heads, N), last block
assert torch.equal(raw, attentions[-1][:, :, 0, 1:].float())
print(f"{len(attentions)} blocks of attention weights, each {tuple(attentions[0].shape)}; "
      f"CLS row of the last block: {tuple(raw.shape)}")

# %% [markdown]
# ## Attention rollout
#
# The last block's CLS row mixes tokens that are themselves mixtures from the blocks below, and
# every block also passes its input on unchanged through the residual connection
# $x \leftarrow x + \mathrm{Attn}(x)$. Rollout (Abnar & Zuidema, 2020) models one block as the
# averaged-over-heads attention $\bar W_l$ plus the identity, renormalised,
# $$A_l = \tfrac12 \bar W_l + \tfrac12 I, \qquad \tilde A = A_L A_{L-1} \cdots A_1,$$
# and reads the relevance of each patch for the CLS token off row 0 of $\tilde A$. By hand:

# %%
def rollout_by_hand(attentions):
    T = attentions[0].shape[-1]  # tokens: N patches + CLS
    eye = torch.eye(T, device=attentions[0].device)
    product = eye  # (T, T), broadcast over the batch below
    for weights in attentions:
        a = 0.5 * weights.mean(dim=1) + 0.5 * eye  # (B, T, T): heads averaged, residual added
        a = a / a.sum(dim=-1, keepdim=True)  # rows are distributions again
        product = a @ product  # (B, T, T): this block after all the earlier ones
    return product[:, 0, 1:]  # (B, N)


rollout = attention_rollout(attentions)  # (B, N)
assert torch.allclose(rollout_by_hand([a.float() for a in attentions]), rollout, atol=1e-6)
print(f"rollout by hand == vit_core.attention_rollout; CLS-to-patch mass per image: "
      f"{[round(v, 3) for v in rollout.sum(-1).tolist()]} (the rest stays on the CLS token itself)")

# %% [markdown]
# Side by side: the image, the last block's CLS attention of every head, and the rollout. Every
# map shows each patch's **share** of the CLS token's attention to the patches (the map sums to
# 1), on **one colour scale** for the whole figure, so brightness can be compared across heads,
# images and rollout. A head that spreads its attention evenly gives every patch
# $1/N = 1/64$ and shows as a flat, dark map. (Stretching each map to its own range, as is
# common, makes such a flat map look as focused as a sharp one.) The colour scale is a square
# root, so that small shares stay visible next to the largest one.

# %%
def attention_figure(pixels, raw, rollout, titles, image_size):
    """Rows of [image | one map per head | rollout], all maps on one colour scale (attention share)."""
    B, heads, N = raw.shape
    head_maps = relevance_to_image(rearrange(raw, "b h p -> (b h) p"), image_size, scale="share")  # (B*heads, S, S)
    head_maps = rearrange(head_maps, "(b h) s t -> b h s t", b=B)  # (B, heads, S, S)
    rollout_maps = relevance_to_image(rollout, image_size, scale="share")  # (B, S, S)
    vmax = max(head_maps.max().item(), rollout_maps.max().item())
    fig, axes = plt.subplots(B, heads + 2, figsize=(1.7 * (heads + 2), 1.7 * B), squeeze=False)
    for b in range(B):
        axes[b, 0].imshow(pixels[b].permute(1, 2, 0).cpu().numpy())  # (S, S, 3) for imshow
        axes[b, 0].set_title(titles[b], fontsize=9)
        for ax, heat, name in zip(axes[b, 1:], [*head_maps[b].cpu(), rollout_maps[b].cpu()],
                                  [*[f"head {h + 1}" for h in range(heads)], "rollout"]):
            shown = ax.imshow(heat.numpy(), cmap="inferno", norm=PowerNorm(0.5, vmin=0, vmax=vmax))  # sqrt: faint shares stay visible
            ax.set_title(name, fontsize=9)
        for ax in axes[b]:
            ax.axis("off")
    bar = fig.colorbar(shown, ax=axes, shrink=0.6, label="share of the CLS attention (square-root scale)")
    bar.ax.axhline(1 / N, color="white", lw=1.5)  # the level of uniform attention
    return fig


pixels = test_images[show_idx].float() / 255  # (B, 3, 32, 32) in [0, 1], for display
titles = [f"{CIFAR10_CLASSES[t]}\n(pred: {CIFAR10_CLASSES[p]})" for t, p in zip(y.tolist(), predicted.tolist())]
fig = attention_figure(pixels, raw, rollout, titles, config.image_size)
fig.suptitle(f"last-block CLS attention per head, and rollout, on one colour scale\n"
             f"(white line on the bar: uniform, 1/{raw.shape[-1]}) — {DATASET}", y=0.95, fontsize=11)
figures.save(fig, FIGURES / "07_attention_rollout")
plt.show()
peak = raw.amax(dim=-1) * raw.shape[-1]  # (B, heads): each map's largest patch share, in units of uniform
print("largest single-patch share of each map, as a multiple of uniform (1/N), median over the images shown:")
print("  " + "  ".join(f"head {h + 1}: {peak[:, h].median():.1f}x" for h in range(raw.shape[1]))
      + f"  rollout: {(rollout.amax(-1) * rollout.shape[-1]).median():.1f}x")

# %% [markdown]
# **What this shows.** The single heads of the last block pick out a few patches each (their
# largest share is several times uniform, printed above), but the rollout, which follows
# attention through all four blocks and the residual path, is nearly flat: its largest patch
# share is a small multiple of uniform. Read by rollout, this model's CLS token draws on the
# whole image almost evenly, but that flatness is partly built into rollout itself: the
# residual half of every $A_l$ flattens the product (caveats).
#
# <details><summary>Caveats</summary>
#
# Bright patches are not shown to be the evidence the model used: the value vectors, the other
# blocks and the MLPs all stand between these weights and the logits. Rollout's rule (half
# attention, half identity, heads averaged) is a modelling choice, and the residual half alone
# flattens it. Six images are examples, not statistics; the next section averages over many.
#
# </details>

# %% [markdown]
# ## Mean attention distance
#
# How far does a head look? For a query patch $i$ and key patch $j$ at pixel distance
# $d_{ij}$ (between patch centres), head $h$ of block $l$ has mean attention distance
# $$\bar d_{l,h} = \mathbb{E}_{\text{images},\,i}\Big[\sum_j w_{ij}\, d_{ij}\Big],$$
# with the CLS token left out and each patch row renormalised over the patches. It is the
# ViT analogue of a CNN's receptive field. A head that attends uniformly scores the mean
# pairwise distance of the grid; a head that only looks at its own patch scores 0. One head
# and block written out, against `vit_core.attention_maps.mean_attention_distance`:

# %%
distances = patch_distances(config.grid_size, config.patch_size).to(device)  # (N, N) pixels
w = attentions[0][:, 0, 1:, 1:].float()  # (B, N, N): block 1, head 1, patch-to-patch weights
w = w / w.sum(dim=-1, keepdim=True)
by_hand = (w * distances).sum(dim=-1).mean()
assert torch.allclose(by_hand, mean_attention_distance(attentions, config.grid_size, config.patch_size)[0, 0])
UNIFORM = distances.mean().item()  # what a head that spreads its attention evenly scores
print(f"block 1, head 1: {by_hand:.2f} px by hand and in vit_core; uniform attention: {UNIFORM:.2f} px")

# %% [markdown]
# Averaged over many test images, for the trained model and for an untrained model of the same
# shape:

# %%
def attention_distances(model, images, labels, mean=None, std=None, image_size=None, batch_size=100):
    """(layers, heads) mean attention distance in pixels, averaged over all `images`."""
    kwargs = {k: v for k, v in dict(mean=mean, std=std, image_size=image_size).items() if v is not None}
    kwargs.setdefault("mean", recipes.NORMALIZE[RECIPE.normalize][0])  # as the recipe trained
    kwargs.setdefault("std", recipes.NORMALIZE[RECIPE.normalize][1])
    loader = TensorLoader(images, labels, batch_size, train=False, device=device, **kwargs)
    total, count = 0.0, 0
    with torch.no_grad():
        for x, _ in loader:
            _, attentions = model(x, return_attention=True)
            cfg = model.config
            total = total + mean_attention_distance(attentions, cfg.grid_size, cfg.patch_size) * len(x)
            count += len(x)
    return total / count  # (layers, heads)


stat_images, stat_labels = subset(test_images, test_labels, per_class=STATS_PER_CLASS, seed=1)
trained_distance = attention_distances(model, stat_images, stat_labels)
initial_distance = attention_distances(initial, stat_images, stat_labels)
print(f"over {len(stat_labels):,} test images; uniform attention = {UNIFORM:.1f} px")
print(f"{'block':<7}" + "".join(f"{'head ' + str(h + 1):>9}" for h in range(config.heads)) + "   at init (mean)")
for l in range(config.depth):
    print(f"{l + 1:<7}" + "".join(f"{d:>9.1f}" for d in trained_distance[l].tolist())
          + f"   {initial_distance[l].mean():.1f}")

# %% [markdown]
# At initialisation the queries and keys are small random projections, so every softmax is
# nearly flat and every head scores close to the uniform distance. A head that scores clearly
# below it after training has learned to favour nearby patches; how far below is printed under
# the plot. The plot follows the paper's fig. 7 (right): one dot per head, blocks along the
# x-axis.

# %%
def distance_scatter(ax, distance, label, shift=0.0, **style):
    layers, heads = distance.shape
    xs = torch.arange(1, layers + 1).repeat_interleave(heads) + shift  # (layers*heads,) block of each dot
    ax.scatter(xs.numpy(), distance.flatten().cpu().numpy(), label=label, **style)
    ax.set_xticks(range(1, layers + 1))


fig, ax = plt.subplots(figsize=(5, 3.5))
distance_scatter(ax, initial_distance, "at initialisation", shift=-0.12, color="0.6", marker="s")  # side by side:
distance_scatter(ax, trained_distance, "trained", shift=0.12, color="tab:blue")                    # neither hides the other
ax.axhline(UNIFORM, ls="--", color="gray", lw=0.8, label="uniform attention")
ax.set(xlabel="block (network depth)", ylabel="mean attention distance (px)", ylim=(0, None),
       title=f"{RECIPE.name}: {config.grid_size}x{config.grid_size} patches of {config.patch_size} px\n{DATASET} test images")
ax.legend(fontsize=8)
figures.save(fig, FIGURES / "07_mean_attention_distance")
plt.show()
max_distance = distances.max().item()
assert ((trained_distance >= 0) & (trained_distance <= max_distance)).all()
assert (initial_distance - UNIFORM).abs().max() < 0.05 * UNIFORM, "an untrained head should attend almost uniformly"
print(f"most local head: {trained_distance.min():.1f} px trained, {initial_distance.min():.1f} px at initialisation")

# %% [markdown]
# Does attention reach further with depth, as the paper found for its large models? The block
# means and the spread of heads within each block, as this model has them:

# %%
block_mean = trained_distance.mean(dim=1)  # (layers,)
for l in range(config.depth):
    print(f"block {l + 1}: mean {block_mean[l]:.1f} px, heads from {trained_distance[l].min():.1f} "
          f"to {trained_distance[l].max():.1f} px ({trained_distance[l].max() / UNIFORM:.0%} of uniform at most)")
rises = all(block_mean[l + 1] >= block_mean[l] for l in range(config.depth - 1))
print(f"mean distance {'rises with every block' if rises else 'does NOT rise with every block'} in this model: "
      f"{block_mean[0]:.1f} px in block 1, {block_mean[-1]:.1f} px in block {config.depth}; "
      f"local heads (under half the uniform distance): "
      f"{int((trained_distance < 0.5 * UNIFORM).sum())} of {trained_distance.numel()}")

# %% [markdown]
# **What this shows.** No head in this model became local: training pulled the heads of the
# first three blocks only a little below the uniform distance, none of them under half of it
# (the count above), and the last block's heads sit at about the uniform distance. Distance does
# not grow with depth either: the first three blocks are alike, and only the last one is wider.
# That last block is a special case: the head reads only the CLS token, so the patch tokens'
# outputs of the last block are thrown away, and no gradient ever reaches its patch-to-patch
# attention, which is what the distance measures.
#
# <details><summary>Caveats</summary>
#
# On an 8 × 8 grid of patches the uniform distance is already small, so even a head that favours
# its neighbours cannot score far below it (exercise 3 shows that the most local head does
# favour them). The paper's pattern (local heads in early blocks, global ones later) is for
# ViT-L/16 with 24 blocks on 224 px images; whether it needs that depth, the data or the
# 14 × 14 grid, one 4-block model trained once cannot separate.
#
# </details>

# %% [markdown]
# ## What the position embeddings learned
#
# The encoder sees a *set* of tokens: position is only known through the learned vector
# $p_i$ added to patch $i$. The cosine similarity $\cos(p_i, p_j) = p_i^\top p_j / (\lVert p_i\rVert\,\lVert p_j\rVert)$
# of one patch's embedding with all others, drawn as a $G \times G$ map at that patch's place in
# a $G \times G$ grid of maps, shows whether the model has worked out the image's geometry
# (the paper's fig. 7, centre). At initialisation the vectors are random, so only the diagonal
# (a patch with itself) is similar.

# %%
def similarity_mosaic(pos_embed):
    """(g, g, g, g) similarities -> one (g*(g+1), g*(g+1)) image of g x g tiles, NaN gaps between."""
    sim = pos_embed_similarity(pos_embed)  # (g, g, g, g)
    tiles = F.pad(sim, (0, 1, 0, 1), value=float("nan"))  # (g, g, g+1, g+1): a gap right and below
    return rearrange(tiles, "i j k l -> (i k) (j l)")  # (g*(g+1), g*(g+1))


G = config.grid_size
tile_centres = [(G + 1) * i + (G - 1) / 2 for i in range(G)]  # where tile i sits in the mosaic
fig, axes = plt.subplots(1, 2, figsize=(8.6, 4.6))
for ax, pos, name in zip(axes, [init_pos_embed, model.pos_embed.cpu()], ["at initialisation", "trained"]):
    image = ax.imshow(similarity_mosaic(pos).numpy(), cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(name)
    ax.set_xticks(tile_centres, range(1, G + 1), fontsize=9)
    ax.set_yticks(tile_centres, range(1, G + 1), fontsize=9)
    ax.set(xlabel="patch column j", ylabel="patch row i")
    ax.tick_params(length=0)
fig.colorbar(image, ax=axes, shrink=0.8, label="cosine similarity")
fig.suptitle(f"{RECIPE.name}: position-embedding similarity; tile (i, j) compares patch (i, j) with every patch",
             y=0.95, fontsize=11)
figures.save(fig, FIGURES / "07_pos_embed_similarity")
plt.show()

# %% [markdown]
# The same, as numbers: the average similarity of two patches as a function of their distance
# on the grid (in patches). Two independent random vectors in $D$ dimensions have a cosine
# similarity of about $0 \pm 1/\sqrt{D}$, so at initialisation every entry should sit near 0,
# within a few times $1/\sqrt{D}$ (the largest distances average only a few pairs).

# %%
def similarity_by_grid_distance(pos_embed, grid_size):
    sim = pos_embed_similarity(pos_embed).reshape(grid_size ** 2, grid_size ** 2)  # (N, N)
    gap = patch_distances(grid_size, 1).round().long()  # (N, N) grid distance, rounded to whole patches
    return {d: sim[gap == d].mean().item() for d in range(1, int(gap.max()) + 1)}


initial_by_gap = similarity_by_grid_distance(init_pos_embed, config.grid_size)
trained_by_gap = similarity_by_grid_distance(model.pos_embed.cpu(), config.grid_size)
print(f"{'grid distance':<15}{'at init':>9}{'trained':>9}")
for d in initial_by_gap:
    print(f"{d:<15}{initial_by_gap[d]:>9.3f}{trained_by_gap[d]:>9.3f}")
sim0 = pos_embed_similarity(model.pos_embed.cpu()).reshape(config.num_patches, -1)
assert torch.allclose(sim0.diagonal(), torch.ones(config.num_patches), atol=1e-5)
noise = config.dim ** -0.5  # std of one random pair's cosine similarity
print(f"1/sqrt(D) = {noise:.3f} for D = {config.dim}")
assert max(abs(v) for v in initial_by_gap.values()) < 2 * noise, "random init: no structure yet"
assert trained_by_gap[1] > trained_by_gap[max(trained_by_gap)], "neighbours should end up more alike than far patches"

# %% [markdown]
# **What this shows.** At initialisation the similarity is noise at every distance (within a
# few times $1/\sqrt{D}$); after training, neighbouring patches' embeddings are alike and the
# similarity falls with grid distance, so the model has recovered the 2-D layout of the image
# from data alone, without being told it. What it does not show: how much the model relies on
# that layout; notebook 02 measures that by shuffling the patches of a trained model.

# %% [markdown]
# ## The same questions for ViT-B/16 pretrained on ImageNet
#
# In the full profile the notebook also loads torchvision's `vit_b_16` with its `IMAGENET1K_V1`
# weights (86 M parameters, 14 × 14 patches of 16 px at 224 px), converts it with
# `vit_core.from_torchvision` and repeats the rollout and the distance plot on CIFAR-10 test
# images resized to 224 px. This is the setting of the paper's fig. 7. Without a network (or
# in the smoke profile, which never downloads and could not run an 86 M model on a CPU in its
# budget) this part says so and is skipped.

# %%
torchvision_b16 = pretrained.imagenet_vit_b16(fallback="the ViT-B/16 part is SKIPPED")  # or None
vit_b16 = from_torchvision(torchvision_b16).to(device).eval() if torchvision_b16 is not None else None

# %%
if vit_b16 is not None:
    b16 = vit_b16.config
    loader = TensorLoader(test_images[show_idx], test_labels[show_idx], len(show_idx), train=False,
                          image_size=b16.image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD, device=device)
    x224, _ = next(iter(loader))  # (6, 3, 224, 224), ImageNet normalisation
    with torch.no_grad():
        _, b16_attentions = vit_b16(x224, return_attention=True)
    pixels224 = F.interpolate(pixels, size=b16.image_size, mode="bilinear", align_corners=False).clamp(0, 1)
    fig = attention_figure(pixels224, cls_attention(b16_attentions)[:, :4], attention_rollout(b16_attentions),
                           [CIFAR10_CLASSES[t] for t in y.tolist()], b16.image_size)
    fig.suptitle("ViT-B/16 (ImageNet-1k weights): CLS attention of heads 1-4\nof the last block, and rollout",
                 y=0.95, fontsize=11)
    figures.save(fig, FIGURES / "07_vit_b16_attention_rollout")
    plt.show()
    n = env.dev_cap(256, cap=8)  # images for the distances (8 in a fast dev run)
    b16_distance = attention_distances(vit_b16, stat_images[:n], stat_labels[:n], mean=IMAGENET_MEAN,
                                       std=IMAGENET_STD, image_size=b16.image_size,
                                       batch_size=env.dev_cap(32))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    distance_scatter(ax, b16_distance, "ViT-B/16, ImageNet-1k", color="tab:orange")
    ax.axhline(patch_distances(b16.grid_size, b16.patch_size).mean().item(), ls="--", color="gray",
               lw=0.8, label="uniform attention")
    ax.set(xlabel="block (network depth)", ylabel="mean attention distance (px)", ylim=(0, None))
    ax.legend(fontsize=8)
    figures.save(fig, FIGURES / "07_vit_b16_mean_attention_distance")
    plt.show()
    print(f"ViT-B/16: block 1 heads span {b16_distance[0].min():.0f}-{b16_distance[0].max():.0f} px, "
          f"last block {b16_distance[-1].min():.0f}-{b16_distance[-1].max():.0f} px")

# %% [markdown]
# ## What to take away
#
# What this run showed, surprises first:
#
# - **No head is local.** In this small CIFAR model every head's mean attention distance stays
#   close to the uniform distance; none is under half of it. The local heads of the paper's
#   early blocks do not appear.
# - **Distance does not grow with depth.** The first three blocks look alike, and the last
#   block's heads sit at about the uniform distance: no gradient reaches its patch-to-patch
#   attention, since only the CLS token's output goes on to the head.
# - **Rollout is nearly uniform.** Single heads of the last block pick out a few patches, but
#   composed through all blocks and the residual path the CLS token's attention is almost flat:
#   its largest patch share is about 1.7x uniform (printed under the maps). Part of that is
#   rollout's own rule: the residual half it adds in every block flattens the product.
# - **The position embeddings did learn the grid.** From random vectors, training made
#   neighbouring patches' embeddings alike and far ones unlike.
#
# <details><summary>Caveats</summary>
#
# Raw attention and rollout describe where information flows; they do not explain a decision,
# since attention weights say nothing about what the value vectors carry or how the MLPs use
# them. The maps are on one colour scale on purpose: stretched to its own range, a flat map looks
# as focused as a sharp one. The paper's figure 7 is for ViT-L/16 (24 blocks of 16 heads, 224 px
# inputs); a 4-block, 32 px model trained once need not repeat its pattern.
#
# </details>

# %% [markdown]
# ## Exercises
#
# 1. **Entropy instead of distance.** For every block and head, compute the mean entropy of the
#    CLS token's attention over the patches (in bits) for the trained and the untrained model.
#    Which is closer to the uniform entropy $\log_2 64 = 6$ bits?
# 2. **Rollout without the residual.** Compute rollout with $A_l = \bar W_l$ (no identity
#    term). How much of the CLS token's attention mass reaches the patches then, against the
#    rollout above?
# 3. **The most local head.** Find the head with the smallest mean attention distance and show
#    that its patch-to-patch attention puts more weight on the neighbours of a patch (8 inside
#    the grid, 5 on an edge, 3 in a corner) than a uniform head would.
#
# Solutions follow; CI runs them and asserts what they claim.

# %% [markdown]
# ---
# ### Solutions (run by CI)

# %%
# Exercise 1: entropy of the CLS row over the patches, averaged over the six images shown above.
def cls_entropy_bits(attentions) -> torch.Tensor:
    rows = torch.stack([a[:, :, 0, 1:] for a in attentions]).float()  # (layers, B, heads, N)
    rows = rows / rows.sum(-1, keepdim=True)
    return -(rows * rows.clamp_min(1e-12).log2()).sum(-1).mean(1)  # (layers, heads)


with torch.no_grad():
    _, initial_attentions = initial(x, return_attention=True)
trained_h, initial_h = cls_entropy_bits(attentions), cls_entropy_bits(initial_attentions)
N = config.num_patches  # number of patches (the series' notation)
print(f"uniform: {torch.log2(torch.tensor(float(N))):.2f} bits; untrained heads {initial_h.min():.2f}-{initial_h.max():.2f}, "
      f"trained heads {trained_h.min():.2f}-{trained_h.max():.2f} bits")
assert initial_h.min() > trained_h.min() and (initial_h - torch.log2(torch.tensor(float(N)))).abs().max() < 0.1

# %%
# Exercise 2: without the identity term all of the CLS row's mass can leave the CLS token.
def rollout_without_residual(attentions):
    product = torch.eye(attentions[0].shape[-1], device=attentions[0].device)
    for weights in attentions:
        product = weights.float().mean(dim=1) @ product  # (B, T, T): CLS and N patches
    return product[:, 0, 1:]  # (B, N)


plain = rollout_without_residual(attentions)
print(f"CLS-to-patch mass: rollout with residual {rollout.sum(-1).mean():.3f}, without {plain.sum(-1).mean():.3f}")
assert plain.sum(-1).mean() > rollout.sum(-1).mean()

# %%
# Exercise 3: the most local head puts more weight on the 8 neighbours than uniform attention would.
layer, head = divmod(int(trained_distance.argmin()), config.heads)
w = attentions[layer][:, head, 1:, 1:].float()  # (B, N, N) patch-to-patch
w = w / w.sum(-1, keepdim=True)
neighbours = (patch_distances(config.grid_size, 1).to(w.device) - 1.2).abs() < 0.3  # 1 or sqrt(2) patches away
share = (w * neighbours).sum(-1).mean()  # share on the 8 (fewer at borders) neighbours
uniform_share = neighbours.float().sum(-1).mean() / N
print(f"block {layer + 1}, head {head + 1}: {share:.1%} of its attention on neighbouring patches, "
      f"uniform would give {uniform_share:.1%}")
assert share > uniform_share

