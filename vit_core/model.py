"""The Vision Transformer (Dosovitskiy et al., 2021): attention, blocks, encoder, model.

State-dict keys: `patch_embed.proj`, `cls_token`, `pos_embed`, then per block
`encoder.blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, then `norm`
and `head`. The layer names are timm's; the `encoder.` prefix keeps the Encoder module
that jeonsworld's and HuggingFace's code also have. Weights from timm, torchvision,
HuggingFace and the original Google checkpoints map onto it one tensor at a time (see
`loaders.py`). The config is in `config.py`; the tokenizer and pooling variants and the
position helpers are in `layers.py`. All are importable from here.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torchvision.ops import stochastic_depth

from .config import ViTConfig
from .layers import ConvStem, SeqPool, resize_pos_embed, sincos_pos_embed

__all__ = ["ViTConfig", "PatchEmbedding", "Attention", "MLP", "Block", "Encoder", "ViT",
           "resize_pos_embed", "sincos_pos_embed"]


class PatchEmbedding(nn.Module):
    """Cut the image into patches and project each one linearly to `dim`.

    A Conv2d whose kernel and stride both equal the patch size sees every patch exactly
    once, so it is the same as flattening each patch and applying one shared Linear.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.dim, config.patch_size,
                              stride=config.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.proj(images)  # (B, dim, grid, grid)
        return rearrange(x, "b c gh gw -> b (gh gw) c")  # (B, num_patches, dim)


class Attention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    Three ways to run it, all with the same weights and the same maths:
    `forward(x)`: every token asks and answers (PyTorch's fused attention kernel);
    `forward_cls(x)`: only token 0 (CLS) asks, every token still answers, output (B, 1, dim);
    `forward_with_weights(x)`: the explicit softmax(q k^T / sqrt(d)) v, returning
    `(output, weights)` so the weights can be shown (the fused kernel never forms them).
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.heads = config.heads
        self.head_dim = config.dim // config.heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(config.dim, 3 * config.dim, bias=config.qkv_bias)
        self.attn_drop = nn.Dropout(config.attention_dropout)
        self.proj = nn.Linear(config.dim, config.dim)
        self.proj_drop = nn.Dropout(config.dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) tokens -> stacked q, k, v: (3, B, heads, T, head_dim)."""
        qkv = self.qkv(x)  # (B, T, 3 * dim): one matmul for all three projections
        return rearrange(qkv, "b t (three h d) -> three b h t d", three=3, h=self.heads)

    def _merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """(B, heads, Tq, head_dim) per-head outputs -> (B, Tq, dim), projected."""
        out = rearrange(out, "b h t d -> b t (h d)")  # (B, Tq, dim): heads side by side
        return self.proj_drop(self.proj(out))  # (B, Tq, dim)

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        p = self.attn_drop.p if self.training else 0.0  # the kernel applies the dropout itself
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, heads, Tq, head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split_heads(x)  # each (B, heads, T, head_dim)
        return self._merge_heads(self._fused(q, k, v))  # (B, T, dim)

    def forward_cls(self, x: torch.Tensor) -> torch.Tensor:
        """Only the CLS query (row 0): (B, T, dim) -> (B, 1, dim)."""
        q, k, v = self._split_heads(x)  # each (B, heads, T, head_dim)
        return self._merge_heads(self._fused(q[:, :, :1], k, v))  # (B, 1, dim): one query

    def forward_with_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output (B, T, dim), attention weights (B, heads, T, T), every row summing to 1)."""
        q, k, v = self._split_heads(x)  # each (B, heads, T, head_dim)
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, T, T): queries x keys
        weights = scores.softmax(dim=-1)  # (B, heads, T, T): each query's mix of the keys
        out = self.attn_drop(weights) @ v  # (B, heads, T, head_dim)
        return self._merge_heads(out), weights


class MLP(nn.Module):
    """Two-layer perceptron applied to every token on its own."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.dim, config.mlp_dim)
        # exact (erf) GELU by default, as torchvision, timm and HuggingFace use; Google's JAX
        # code calls flax's nn.gelu, whose default is the tanh approximation
        self.act = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.fc2 = nn.Linear(config.mlp_dim, config.dim)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x)))  # (B, T, mlp_dim)
        return self.drop(self.fc2(x))  # (B, T, dim)


class Block(nn.Module):
    """Pre-norm encoder block: x + Attn(LN(x)), then x + MLP(LN(x)).

    `forward_cls(x)` updates only the CLS token (row 0): it still attends to every token,
    but no other token's attention output, projection or MLP is computed; it is a method of
    its own, so forward hooks on the block do not see it. `forward_with_weights(x)` also
    returns the attention weights. With `config.drop_path > 0`, training drops each residual
    branch for a random subset of the samples (torchvision's `stochastic_depth`, "row"
    mode) and rescales the survivors.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.drop_path = config.drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._drop(self.attn(self.norm1(x)))  # (B, T, dim)
        return self._mlp_step(x)

    def forward_cls(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> (B, 1, dim): the CLS row of what `forward` returns."""
        x = x[:, :1] + self._drop(self.attn.forward_cls(self.norm1(x)))  # (B, 1, dim)
        return self._mlp_step(x)

    def forward_with_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, T, dim), attention weights (B, heads, T, T))."""
        out, weights = self.attn.forward_with_weights(self.norm1(x))
        return self._mlp_step(x + self._drop(out)), weights

    def _mlp_step(self, x: torch.Tensor) -> torch.Tensor:
        return x + self._drop(self.mlp(self.norm2(x)))  # (B, T or 1, dim)

    def _drop(self, branch: torch.Tensor) -> torch.Tensor:
        if not self.drop_path:
            return branch
        return stochastic_depth(branch, self.drop_path, "row", self.training)


class Encoder(nn.Module):
    """A stack of `depth` blocks. It sees a set of tokens: nothing here knows their order."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)  # (B, T, dim)
        return x

    def forward_cls(self, x: torch.Tensor) -> torch.Tensor:
        """Every block but the last as usual; the last one updates only CLS: (B, 1, dim)."""
        for block in self.blocks[:-1]:
            x = block(x)  # (B, T, dim)
        return self.blocks[-1].forward_cls(x)  # (B, 1, dim)

    def forward_with_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(tokens (B, T, dim), one (B, heads, T, T) attention tensor per block)."""
        weights = []
        for block in self.blocks:
            x, w = block.forward_with_weights(x)  # (B, T, dim), (B, heads, T, T)
            weights.append(w)
        return x, weights


class ViT(nn.Module):
    """Tokens (patch embedding or conv stem) + CLS token + positions -> encoder -> LayerNorm
    (unless config.final_norm is False) -> pooling -> head.

    Following timm: `forward_features(images)` gives the normed tokens (B, T, dim),
    `forward_head(tokens)` the logits, and `no_weight_decay()` names the parameters an
    optimiser should not decay.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        self.patch_embed = (PatchEmbedding(config) if config.stem == "patch" else
                            ConvStem(config.in_channels, config.dim, config.patch_size))
        if config.pool == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        if config.pos == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, config.seq_len, config.dim))
        else:  # fixed: a buffer, saved with the weights but never trained
            table = sincos_pos_embed(config.grid_size, config.dim)  # (num_patches, dim)
            pad = config.seq_len - len(table)  # 1 with a CLS token, which gets a zero row
            self.register_buffer("pos_embed", F.pad(table, (0, 0, pad, 0))[None])  # (1, T, dim)
        self.seq_pool = SeqPool(config.dim) if config.pool == "seq" else None
        self.pos_drop = nn.Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.norm = (nn.LayerNorm(config.dim, eps=config.layer_norm_eps) if config.final_norm
                     else nn.Identity())
        self.head = nn.Linear(config.dim, config.num_classes)
        self.reset_parameters()

    @property
    def blocks(self) -> nn.ModuleList:
        return self.encoder.blocks

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters that must not be weight-decayed (timm's convention): the
        learned positions and the CLS token, which decay would pull toward zero. Fixed sin-cos
        positions are a buffer and not listed; a model without a CLS token has none."""
        names = ("pos_embed", "cls_token")
        return {n for n in names if isinstance(getattr(self, n, None), nn.Parameter)}

    def reset_parameters(self):
        if self.config.pos == "learned":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.config.pool == "cls":
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        normal = self.config.init == "normal"  # N(0, 0.02), not truncated, patches included
        for module in self.modules():
            if isinstance(module, nn.Linear):
                (nn.init.normal_ if normal else nn.init.trunc_normal_)(module.weight, std=0.02)
                if module.bias is not None:  # qkv_bias=False leaves the fused qkv without one
                    nn.init.zeros_(module.bias)
        if self.config.stem == "conv":
            self.patch_embed.reset_parameters()
        else:
            self._init_patch_projection(normal)

    def _init_patch_projection(self, normal: bool):
        # The patch projection is a Linear over flattened patches: LeCun-normal fan-in init
        # (std 0.144 for 4x4x3 patches), seven times the 0.02 of the 'normal' init.
        w = self.patch_embed.proj.weight
        if normal:
            nn.init.normal_(w, std=0.02)
        else:
            nn.init.trunc_normal_(w, std=math.sqrt(1.0 / w[0].numel()))
        nn.init.zeros_(self.patch_embed.proj.bias)

    def _check_images(self, images: torch.Tensor):
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"ViT expects images of shape (B, {c.in_channels}, {c.image_size}, "
                f"{c.image_size}), got {tuple(images.shape)}; resize the images, or call "
                f"model.resize_image_size(new_size) to resize the position embeddings on purpose"
            )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> the token sequence the encoder sees: CLS first, positions added."""
        self._check_images(images)
        x = self.patch_embed(images)  # (B, num_patches, dim)
        if self.config.pool == "cls":
            cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, dim)
            x = torch.cat([cls, x], dim=1)  # (B, T, dim), T = num_patches + 1 tokens
        return self.pos_drop(x + self.pos_embed)  # (B, T, dim)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) normed tokens -> (B, dim), the one vector the head reads."""
        if self.config.pool == "cls":
            return x[:, 0]  # (B, dim): the CLS token
        if self.config.pool == "mean":
            return x.mean(dim=1)  # (B, dim)
        return self.seq_pool(x)  # (B, dim)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> every token after the encoder and the final norm: (B, T, dim)."""
        return self.norm(self.encoder(self.embed(images)))  # (B, T, dim)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Normed tokens (B, T, dim) -> logits (B, num_classes). With pool='cls' a (B, 1, dim)
        CLS row is enough."""
        return self.head(self.pool(x))  # (B, num_classes)

    def forward(self, images: torch.Tensor, return_attention: bool = False):
        """Logits (B, num_classes); with return_attention=True, `(logits, weights)` where
        `weights` holds each block's attention weights (B, heads, T, T), computed explicitly.

        `config.cls_only_last_block` (off by default) lets the last block update only the
        CLS token, the one row the head reads: the same logits and gradients, and
        (T - 1)(dim^2 + 2 T dim + 2 dim mlp_dim) fewer multiply-adds per image.
        return_attention=True always runs every row.
        """
        x = self.embed(images)  # (B, T, dim)
        if return_attention:
            x, weights = self.encoder.forward_with_weights(x)  # (B, T, dim), depth x (B, h, T, T)
            return self.forward_head(self.norm(x)), weights
        if self.config.cls_only_last_block:
            return self.forward_head(self.norm(self.encoder.forward_cls(x)))  # CLS row only
        return self.forward_head(self.norm(self.encoder(x)))  # (B, num_classes)

    @torch.no_grad()
    def resize_image_size(self, image_size: int) -> "ViT":
        """Accept images of a new size by resizing the position embeddings (bicubic, CLS kept)."""
        if self.config.pool != "cls" or self.config.pos != "learned":
            raise ValueError("resize_image_size handles learned positions with a CLS token only")
        new = ViTConfig(**{**self.config.__dict__, "image_size": image_size})
        self.pos_embed = nn.Parameter(resize_pos_embed(self.pos_embed.data, new.grid_size))
        self.config = new
        return self
