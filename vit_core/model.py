"""The Vision Transformer (Dosovitskiy et al., 2021) in one flat file.

State-dict keys: `patch_embed.proj`, `cls_token`, `pos_embed`, then per block
`encoder.blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, then `norm`
and `head`. The layer names are timm's; the `encoder.` prefix keeps the Encoder module
that jeonsworld's and HuggingFace's code also have (notebooks 04 and 10 map them). Weights
from timm, torchvision, HuggingFace and the original Google checkpoints map onto it one
tensor at a time (see `loaders.py`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torchvision.ops import stochastic_depth


@dataclass
class ViTConfig:
    image_size: int = 32            # input height = width, in pixels
    patch_size: int = 4             # side of one square patch, in pixels; divides image_size
    in_channels: int = 3            # colour channels of the input images
    num_classes: int = 10           # outputs of the classification head
    dim: int = 48                   # token width (embedding dimension)
    depth: int = 4                  # number of encoder blocks
    heads: int = 4                  # attention heads per block; dim must divide evenly
    mlp_dim: int = 192              # hidden width of each block's MLP
    dropout: float = 0.0            # dropout on embeddings, attention output and MLP
    attention_dropout: float = 0.0  # dropout on the attention weights themselves
    qkv_bias: bool = True           # bias in the fused query/key/value projection
    layer_norm_eps: float = 1e-6    # LayerNorm epsilon (torchvision, timm and Google use 1e-6)
    drop_path: float = 0.0          # stochastic depth: chance a residual branch is dropped, per sample
    cls_only_last_block: bool = False  # speed-up: the last block updates only the CLS token (see ViT)
    final_norm: bool = True         # LayerNorm before the head (paper, timm, torchvision); seed 003's code has none
    gelu: str = "erf"               # 'erf': exact GELU | 'tanh': its approximation (Google's JAX code, seed 003)
    init: str = "vit"               # 'vit': trunc-normal 0.02, LeCun-normal patch projection |
                                    # 'normal': N(0, 0.02) for every projection (seed 003's code)
    stem: str = "patch"             # how tokens are made: 'patch' (one linear map per patch) |
                                    # 'conv' (3x3 convs + max-pools, CCT's tokenizer); same grid
    pool: str = "cls"               # what the head reads: 'cls' token | 'mean' of the tokens |
                                    # 'seq' (a learned attention-weighted mean, CCT's SeqPool)
    pos: str = "learned"            # position embeddings: 'learned' | 'sincos' (fixed 2-D sin-cos)

    def __post_init__(self):
        checks = [
            (self.image_size > 0 and self.patch_size > 0, "image_size and patch_size must be positive"),
            (self.image_size % self.patch_size == 0,
             f"patch_size {self.patch_size} must divide image_size {self.image_size} "
             f"(remainder {self.image_size % self.patch_size if self.patch_size else '?'})"),
            (self.dim > 0 and self.heads > 0 and self.dim % self.heads == 0,
             f"dim {self.dim} must be divisible by heads {self.heads}"),
            (min(self.in_channels, self.num_classes, self.depth, self.mlp_dim) > 0,
             "in_channels, num_classes, depth and mlp_dim must be positive"),
            (0.0 <= self.dropout < 1.0 and 0.0 <= self.attention_dropout < 1.0 and 0.0 <= self.drop_path < 1.0,
             "dropout probabilities must lie in [0, 1)"),
            (self.gelu in ("erf", "tanh"), f"gelu must be 'erf' or 'tanh', got {self.gelu!r}"),
            (self.init in ("vit", "normal"), f"init must be 'vit' or 'normal', got {self.init!r}"),
            (self.stem in ("patch", "conv"), f"stem must be 'patch' or 'conv', got {self.stem!r}"),
            (self.stem == "patch" or self.patch_size in (2, 4, 8),
             f"stem='conv' halves the image per layer: patch_size must be 2, 4 or 8, "
             f"got {self.patch_size}"),
            (self.pool in ("cls", "mean", "seq"), f"pool must be 'cls', 'mean' or 'seq', got {self.pool!r}"),
            (self.pool == "cls" or not self.cls_only_last_block,
             "cls_only_last_block needs pool='cls': other pools read every token"),
            (self.pos in ("learned", "sincos"), f"pos must be 'learned' or 'sincos', got {self.pos!r}"),
            (self.pos == "learned" or self.dim % 4 == 0, f"pos='sincos' needs dim divisible by 4, got {self.dim}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid ViTConfig: {message}")

    @property
    def grid_size(self) -> int:
        """Patches along one side of the image."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size ** 2

    @property
    def seq_len(self) -> int:
        """Tokens the encoder sees: one per patch, plus the CLS token when pool='cls'."""
        return self.num_patches + (self.pool == "cls")

    @classmethod
    def cifar10_seed(cls, **overrides) -> "ViTConfig":
        """The series' seed model: 32 px CIFAR-10 images, 64 patches of 4x4, 0.1 M parameters."""
        base = dict(image_size=32, patch_size=4, num_classes=10, dim=48, depth=4, heads=4, mlp_dim=192)
        return cls(**{**base, **overrides})

    @classmethod
    def vit_b_16(cls, **overrides) -> "ViTConfig":
        """ViT-Base/16 from the paper: 224 px, 196 patches of 16x16, 86.6 M parameters."""
        base = dict(image_size=224, patch_size=16, num_classes=1000, dim=768, depth=12, heads=12, mlp_dim=3072)
        return cls(**{**base, **overrides})


class PatchEmbedding(nn.Module):
    """Cut the image into patches and project each one linearly to `dim`.

    A Conv2d whose kernel and stride both equal the patch size sees every patch exactly
    once, so it is the same as flattening each patch and applying one shared Linear.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.dim, config.patch_size, stride=config.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.proj(images)  # (B, dim, grid, grid)
        return rearrange(x, "b c gh gw -> b (gh gw) c")  # (B, num_patches, dim)


class ConvStem(nn.Module):
    """Tokens from a few small convolutions instead of one linear map per patch: each layer is
    a 3x3 convolution, ReLU and a stride-2 max-pool, so log2(patch_size) layers give the same
    token grid as the patch embedding (Hassani et al. 2021, "Escaping the Big Data Paradigm
    with Compact Transformers"). Neighbouring patches now share pixels: a locality prior.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        layers, channels = [], config.in_channels
        for _ in range(int(math.log2(config.patch_size))):
            layers += [nn.Conv2d(channels, config.dim, 3, padding=1, bias=False), nn.ReLU(),
                       nn.MaxPool2d(3, stride=2, padding=1)]
            channels = config.dim
        self.convs = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.convs(images)  # (B, dim, grid, grid)
        return rearrange(x, "b c gh gw -> b (gh gw) c")  # (B, num_patches, dim)


def sincos_pos_embed(grid_size: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings of a grid x grid patch layout: (g*g, dim).

    A quarter of the channels each holds sin and cos of the row, then of the column, at
    dim/4 frequencies temperature^(-k/(dim/4)): every vector has length sqrt(dim/2), and the
    dot product of two positions depends only on their offset.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for 2-D sine-cosine embeddings, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    omega = temperature ** -(torch.arange(dim // 4) / (dim // 4))  # (dim/4,): slow to fast waves
    r = rows.flatten()[:, None].float() * omega  # (g*g, dim/4)
    c = cols.flatten()[:, None].float() * omega  # (g*g, dim/4)
    return torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1)  # (g*g, dim), row-major patches


class SeqPool(nn.Module):
    """Sequence pooling: one learned score per token, softmax over the tokens, and the
    weighted mean of the tokens (Hassani et al. 2021). Mean pooling is the case of equal
    scores."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.score = nn.Linear(config.dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.score(x).softmax(dim=1)  # (B, N, 1): sums to 1 over the N tokens
        return (weights * x).sum(dim=1)  # (B, dim)


class Attention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    Set `keep_weights = True` to take the manual path and store the attention weights in
    `self.weights` (ViT.forward(..., return_attention=True) does this for every block).
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
        self.keep_weights = False
        self.weights: torch.Tensor | None = None  # (B, heads, Tq, T) after a forward with keep_weights

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        B, T, C = x.shape  # batch, tokens, width (the series notation)
        qkv = self.qkv(x)  # (B, T, 3 * dim)
        q, k, v = rearrange(qkv, "b t (three h d) -> three b h t d", three=3, h=self.heads)  # each (B, heads, T, head_dim)
        if cls_only:
            q = q[:, :, :1]  # (B, heads, 1, head_dim): only CLS asks; every token still answers (Tq = 1)
        if self.keep_weights:
            # The manual path: the same maths as the fused kernel, but it keeps the weights.
            scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, Tq, T): Tq queries, T keys
            self.weights = scores.softmax(dim=-1)  # (B, heads, Tq, T), every row sums to 1
            out = self.attn_drop(self.weights) @ v  # (B, heads, Tq, head_dim)
        else:
            p = self.attn_drop.p if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, heads, Tq, head_dim)
        out = rearrange(out, "b h t d -> b t (h d)")  # (B, Tq, dim): heads merged back
        return self.proj_drop(self.proj(out))


class MLP(nn.Module):
    """Two-layer perceptron applied to every token on its own."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.dim, config.mlp_dim)
        # exact (erf) GELU by default, as torchvision, timm and HF use; Google's JAX code calls flax's
        # nn.gelu, whose default is the tanh approximation. The two differ by at most 5e-4 (notebook 04).
        self.act = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.fc2 = nn.Linear(config.mlp_dim, config.dim)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x)))  # (B, T, mlp_dim)
        return self.drop(self.fc2(x))  # (B, T, dim)


class Block(nn.Module):
    """Pre-norm encoder block: x + Attn(LN(x)), then x + MLP(LN(x)).

    With `cls_only=True` only the CLS token (row 0) is updated: it still attends to every
    token, but no other token's attention, projection or MLP is computed. With
    `config.drop_path > 0`, training drops each residual branch for a random subset of the
    samples (torchvision's `stochastic_depth`, "row" mode) and rescales the survivors.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.drop_path = config.drop_path

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        x = (x[:, :1] if cls_only else x) + self._drop(self.attn(self.norm1(x), cls_only))  # (B, 1 or T, dim)
        return x + self._drop(self.mlp(self.norm2(x)))

    def _drop(self, branch: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(branch, self.drop_path, "row", self.training) if self.drop_path else branch


class Encoder(nn.Module):
    """A stack of `depth` blocks. It sees a set of tokens: nothing here knows their order."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))

    def forward(self, x: torch.Tensor, cls_only_last: bool = False) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, cls_only=cls_only_last and i == len(self.blocks) - 1)  # (B, T, dim); (B, 1, dim) if cls_only
        return x


class ViT(nn.Module):
    """Patch embedding + CLS token + learned positions -> encoder -> LayerNorm (unless
    config.final_norm is False) -> head."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbedding(config) if config.stem == "patch" else ConvStem(config)
        if config.pool == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        if config.pos == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, config.seq_len, config.dim))
        else:  # fixed: a buffer, saved with the weights but never trained; CLS (if any) gets zeros
            table = sincos_pos_embed(config.grid_size, config.dim)  # (num_patches, dim)
            self.register_buffer("pos_embed", F.pad(table, (0, 0, config.seq_len - len(table), 0))[None])
        self.seq_pool = SeqPool(config) if config.pool == "seq" else None
        self.pos_drop = nn.Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps) if config.final_norm else nn.Identity()
        self.head = nn.Linear(config.dim, config.num_classes)
        self.reset_parameters()

    @property
    def blocks(self) -> nn.ModuleList:
        return self.encoder.blocks

    def reset_parameters(self):
        if self.config.pos == "learned":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.config.pool == "cls":
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        normal = self.config.init == "normal"  # seed 003's code: N(0, 0.02), not truncated, patches included
        for module in self.modules():
            if isinstance(module, nn.Linear):
                (nn.init.normal_ if normal else nn.init.trunc_normal_)(module.weight, std=0.02)
                if module.bias is not None:  # qkv_bias=False leaves the fused projection without one
                    nn.init.zeros_(module.bias)
        if self.config.stem == "conv":  # ReLU layers: He (Kaiming) normal init, as CCT does
            for conv in self.patch_embed.convs[::3]:
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            return
        # The patch projection is a Linear over flattened patches: LeCun-normal fan-in init (std 0.144
        # for 4x4x3 patches), seven times the 0.02 of the 'normal' init.
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
                f"ViT expects images of shape (B, {c.in_channels}, {c.image_size}, {c.image_size}), "
                f"got {tuple(images.shape)}; resize the images, or call "
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

    def forward(self, images: torch.Tensor, return_attention: bool = False):
        """Logits (B, num_classes); with return_attention=True also a list with each block's
        attention weights (B, heads, T, T), computed on the manual path.

        `config.cls_only_last_block` (off by default) lets the last block update only the
        CLS token, the one row the head reads: same logits and gradients, about 19% fewer
        multiply-adds at the seed config, but the last block then outputs (B, 1, dim).
        return_attention=True always runs every row.
        """
        if return_attention:
            return self._forward_keeping_attention(images)
        x = self.embed(images)  # (B, T, dim)
        x = self.encoder(x, cls_only_last=self.config.cls_only_last_block)  # (B, T, dim), or (B, 1, dim)
        return self.head(self.pool(self.norm(x)))  # (B, num_classes)

    def _forward_keeping_attention(self, images: torch.Tensor):
        attentions = [block.attn for block in self.blocks]
        for attn in attentions:
            attn.keep_weights = True
        try:
            x = self.encoder(self.embed(images))  # (B, T, dim): every row, for every map
            logits = self.head(self.pool(self.norm(x)))  # (B, num_classes)
            return logits, [attn.weights for attn in attentions]
        finally:
            for attn in attentions:
                attn.keep_weights, attn.weights = False, None

    @torch.no_grad()
    def resize_image_size(self, image_size: int) -> "ViT":
        """Accept images of a new size by resizing the position embeddings (bicubic, CLS kept)."""
        if self.config.pool != "cls" or self.config.pos != "learned":
            raise ValueError("resize_image_size handles learned positions with a CLS token only")
        new = ViTConfig(**{**self.config.__dict__, "image_size": image_size})
        self.pos_embed = nn.Parameter(resize_pos_embed(self.pos_embed.data, new.grid_size))
        self.config = new
        return self


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: int) -> torch.Tensor:
    """Resize (1, 1 + g*g, dim) position embeddings to (1, 1 + new_grid**2, dim).

    The CLS position is kept as it is; the patch positions are treated as a g x g image
    with `dim` channels and resized bicubically, so neighbours stay neighbours.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must have shape (1, 1 + g*g, dim), got {tuple(pos_embed.shape)}")
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]  # (1, 1, dim), (1, g*g, dim)
    old_grid = math.isqrt(patch_pos.shape[1])
    if old_grid * old_grid != patch_pos.shape[1]:
        raise ValueError(f"pos_embed holds {patch_pos.shape[1]} patch positions, not a square grid")
    if old_grid == new_grid:
        return pos_embed.clone()
    grid = rearrange(patch_pos, "1 (gh gw) d -> 1 d gh gw", gh=old_grid)  # (1, dim, g, g)
    grid = F.interpolate(grid.float(), size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    patch_pos = rearrange(grid, "1 d gh gw -> 1 (gh gw) d").to(pos_embed.dtype)  # (1, new_grid**2, dim)
    return torch.cat([cls_pos, patch_pos], dim=1)  # (1, 1 + new_grid**2, dim)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute element-wise difference: how the series checks "the same numbers"."""
    return (a.detach().float() - b.detach().float()).abs().max().item()
