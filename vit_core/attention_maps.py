"""What a trained ViT looks at: attention rollout, raw CLS attention, mean attention
distance; and how it knows where a patch is: position-embedding similarity, the fixed 2-D
sine-cosine embedding to compare learned ones with, and patch shuffling to test for order.

The attention functions take the list of weights that `model(images, return_attention=True)`
returns after the logits, one (B, heads, N, N) tensor per layer, with the CLS token at
position 0 and the patches in row-major order behind it (or a stacked (layers, B, heads, N, N)
tensor).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from .layers import sincos_pos_embed  # noqa: F401  (offered here, as the docstring says)

HEAD_FUSIONS = ("mean", "max", "min")


def _stack(attentions) -> torch.Tensor:
    """List of per-layer (B, heads, N, N) weights -> one (layers, B, heads, N, N) float tensor."""
    if isinstance(attentions, torch.Tensor):
        stacked = attentions if attentions.ndim == 5 else attentions.unsqueeze(0)
    else:
        if any(a is None for a in attentions):
            raise ValueError("attention weights are None: "
                             "call the model with return_attention=True")
        stacked = torch.stack(list(attentions))
    if stacked.ndim != 5 or stacked.shape[-1] != stacked.shape[-2]:
        raise ValueError(f"expected (layers, B, heads, N, N) attention weights, "
                         f"got {tuple(stacked.shape)}")
    return stacked.detach().float()


def _patch_grid(num_tokens: int, grid_size: int | None = None) -> tuple[int, int]:
    """(grid side g, index of the first patch token): 1 when a CLS token leads, else 0."""
    for first in (1, 0):
        g = math.isqrt(num_tokens - first)
        if g * g == num_tokens - first and (grid_size is None or g == grid_size):
            return g, first
    raise ValueError(f"{num_tokens} tokens are neither g*g patches nor 1 + g*g "
                     f"(grid_size={grid_size})")


def cls_attention(attentions, layer: int = -1) -> torch.Tensor:
    """Raw attention of the CLS query on every patch in one layer: (B, heads, N-1)."""
    weights = _stack(attentions)[layer]  # (B, heads, N, N)
    return weights[:, :, 0, 1:]  # (B, heads, N-1): row 0 is the CLS query, column 0 the CLS key


def _fuse_heads(weights: torch.Tensor, head_fusion: str) -> torch.Tensor:
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
    if head_fusion == "mean":
        return weights.mean(dim=1)  # (B, N, N)
    return weights.amax(dim=1) if head_fusion == "max" else weights.amin(dim=1)  # (B, N, N)


def _discard_lowest(weights: torch.Tensor, discard_ratio: float) -> torch.Tensor:
    """Zero the `discard_ratio` weakest weights of every query row; the diagonal always survives."""
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must lie in [0, 1), got {discard_ratio}")
    n_drop = int(discard_ratio * weights.shape[-1])
    if n_drop == 0:
        return weights
    eye = torch.eye(weights.shape[-1], dtype=torch.bool, device=weights.device)
    ranked = weights.masked_fill(eye, float("inf"))  # (B, N, N): self-attention never ranks lowest
    lowest = ranked.topk(n_drop, dim=-1, largest=False).indices  # (B, N, n_drop)
    return weights.scatter(-1, lowest, 0.0)  # (B, N, N)


def attention_rollout(attentions, discard_ratio: float = 0.0,
                      head_fusion: str = "mean") -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): relevance of every patch for the CLS token.

    Each block computes x + Attn(x), so a token's next state is half itself and half the
    mixture its attention row describes. Rollout models that as A = 0.5 W + 0.5 I (rows
    renormalised to sum to 1) and multiplies these matrices from the first layer to the last.
    Returns (B, N-1): the CLS row of the product without its CLS column.
    """
    stacked = _stack(attentions)  # (layers, B, heads, N, N)
    layers, B, _, N, _ = stacked.shape
    eye = torch.eye(N, device=stacked.device)  # (N, N)
    rollout = eye.expand(B, N, N)  # (B, N, N)
    for weights in stacked:
        fused = _discard_lowest(_fuse_heads(weights, head_fusion), discard_ratio)  # (B, N, N)
        mixed = 0.5 * fused + 0.5 * eye  # (B, N, N): the residual path as identity attention
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)  # (B, N, N), rows sum to 1 again
        rollout = mixed @ rollout  # (B, N, N): layer l applied after layers 1..l-1
    return rollout[:, 0, 1:]  # (B, N-1)


def patch_distances(grid_size: int, patch_size: int) -> torch.Tensor:
    """(g*g, g*g) Euclidean distance between patch centres, in pixels, row-major patch order."""
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).float() * patch_size  # (g*g, 2)
    return torch.cdist(centres, centres)  # (g*g, g*g)


def mean_attention_distance(attentions, grid_size: int, patch_size: int) -> torch.Tensor:
    """Mean attention distance per layer and head, in pixels (ViT paper, fig. 7 right).

    For every patch query, the attention-weighted mean distance to the patch keys it
    attends to, averaged over queries and images. The CLS token has no position, so its
    row and column are dropped and each patch row is renormalised over the patch keys.
    Returns (layers, heads).
    """
    stacked = _stack(attentions)  # (layers, B, heads, N, N)
    _, first = _patch_grid(stacked.shape[-1], grid_size)
    patch_to_patch = stacked[..., first:, first:]  # (layers, B, heads, P, P), P = g*g
    patch_to_patch = patch_to_patch / patch_to_patch.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    distances = patch_distances(grid_size, patch_size).to(stacked.device)  # (P, P)
    per_query = (patch_to_patch * distances).sum(dim=-1)  # (layers, B, heads, P)
    return per_query.mean(dim=(1, 3))  # (layers, heads)


def pos_embed_similarity(pos_embed: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between the position embeddings of all patch pairs: (g, g, g, g).

    Entry [i, j, k, l] compares the patch at row i, column j with the patch at row k,
    column l (ViT paper, fig. 7 centre). A CLS position in front is ignored.
    """
    pos = pos_embed.detach().float()
    pos = pos[0] if pos.ndim == 3 else pos  # (N, dim)
    g, first = _patch_grid(pos.shape[0])
    unit = F.normalize(pos[first:], dim=-1)  # (g*g, dim), unit length
    similarity = unit @ unit.T  # (g*g, g*g)
    return rearrange(similarity, "(i j) (k l) -> i j k l", i=g, k=g)  # (g, g, g, g)


def shuffle_patches(images: torch.Tensor, patch_size: int, perm: torch.Tensor) -> torch.Tensor:
    """Move every image's patch_size x patch_size patches to new places in the grid: the
    patch at position perm[n] goes to position n (row-major), the same for every image."""
    g = images.shape[-1] // patch_size
    patches = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) c p1 p2",
                        p1=patch_size, p2=patch_size)  # (B, g*g, C, p, p)
    shuffled = patches[:, perm]  # (B, g*g, C, p, p): the same permutation for every image
    return rearrange(shuffled, "b (gh gw) c p1 p2 -> b c (gh p1) (gw p2)", gh=g)  # (B, C, H, W)


def relevance_to_image(relevance: torch.Tensor, image_size: int,
                       scale: str = "minmax") -> torch.Tensor:
    """(B, g*g) patch relevances -> (B, image_size, image_size) maps.

    scale="minmax": bilinear upsampling, each map stretched to [0, 1] on its own (shows shapes
    only: a nearly uniform map looks as focused as a sharp one). scale="share": each map is
    divided by its sum, so a pixel holds its patch's share of the attention (uniform = 1 / g*g),
    comparable across maps on one colour scale; nearest upsampling keeps every patch one block.
    """
    g = math.isqrt(relevance.shape[-1])
    grid = rearrange(relevance.float(), "b (gh gw) -> b 1 gh gw", gh=g)  # (B, 1, g, g)
    if scale == "share":
        grid = grid / grid.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        return F.interpolate(grid, size=(image_size, image_size), mode="nearest")[:, 0]  # (B, S, S)
    if scale != "minmax":
        raise ValueError(f"scale must be 'minmax' or 'share', got {scale!r}")
    grid = F.interpolate(grid, size=(image_size, image_size), mode="bilinear", align_corners=False)
    lo = grid.amin(dim=(-2, -1), keepdim=True)
    hi = grid.amax(dim=(-2, -1), keepdim=True)
    return ((grid - lo) / (hi - lo).clamp_min(1e-12))[:, 0]  # (B, S, S)
