"""ViTConfig: every size and option of a `vit_core.ViT`, checked when it is made."""
from __future__ import annotations

from dataclasses import dataclass


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
    drop_path: float = 0.0          # stochastic depth: chance a residual branch is dropped
    cls_only_last_block: bool = False  # speed-up: the last block updates only the CLS token
    final_norm: bool = True         # LayerNorm before the head (paper, timm, torchvision)
    gelu: str = "erf"               # 'erf': exact GELU | 'tanh': its tanh approximation,
                                    # the default of flax's nn.gelu in Google's JAX code
    init: str = "vit"               # 'vit': trunc-normal 0.02, LeCun-normal patch projection |
                                    # 'normal': N(0, 0.02) for every projection
    stem: str = "patch"             # how tokens are made: 'patch' (one linear map per patch) |
                                    # 'conv' (3x3 convs + max-pools, CCT's tokenizer); same grid
    pool: str = "cls"               # what the head reads: 'cls' token | 'mean' of the tokens |
                                    # 'seq' (a learned attention-weighted mean, CCT's SeqPool)
    pos: str = "learned"            # position embeddings: 'learned' | 'sincos' (fixed 2-D sin-cos)

    def __post_init__(self):
        for ok, message in self._checks():
            if not ok:
                raise ValueError(f"invalid ViTConfig: {message}")

    def _checks(self) -> list[tuple[bool, str]]:
        """(condition, message if it fails) for every rule the fields must follow."""
        remainder = self.image_size % self.patch_size if self.patch_size else "?"
        return [
            (self.image_size > 0 and self.patch_size > 0,
             "image_size and patch_size must be positive"),
            (remainder == 0, f"patch_size {self.patch_size} must divide image_size "
                             f"{self.image_size} (remainder {remainder})"),
            (self.dim > 0 and self.heads > 0 and self.dim % self.heads == 0,
             f"dim {self.dim} must be divisible by heads {self.heads}"),
            (min(self.in_channels, self.num_classes, self.depth, self.mlp_dim) > 0,
             "in_channels, num_classes, depth and mlp_dim must be positive"),
            (all(0.0 <= p < 1.0 for p in (self.dropout, self.attention_dropout, self.drop_path)),
             "dropout probabilities must lie in [0, 1)"),
            (self.gelu in ("erf", "tanh"), f"gelu must be 'erf' or 'tanh', got {self.gelu!r}"),
            (self.init in ("vit", "normal"), f"init must be 'vit' or 'normal', got {self.init!r}"),
            (self.stem in ("patch", "conv"), f"stem must be 'patch' or 'conv', got {self.stem!r}"),
            (self.stem == "patch" or self.patch_size in (2, 4, 8),
             f"stem='conv' halves the image per layer: patch_size must be 2, 4 or 8, "
             f"got {self.patch_size}"),
            (self.pool in ("cls", "mean", "seq"),
             f"pool must be 'cls', 'mean' or 'seq', got {self.pool!r}"),
            (self.pool == "cls" or not self.cls_only_last_block,
             "cls_only_last_block needs pool='cls': other pools read every token"),
            (self.pos in ("learned", "sincos"),
             f"pos must be 'learned' or 'sincos', got {self.pos!r}"),
            (self.pos == "learned" or self.dim % 4 == 0,
             f"pos='sincos' needs dim divisible by 4, got {self.dim}"),
        ]

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
    def cifar10_tiny(cls, **overrides) -> "ViTConfig":
        """The tiny CIFAR-10 model: 32 px, 64 patches of 4x4, width 48, 4 blocks."""
        base = dict(image_size=32, patch_size=4, num_classes=10, dim=48, depth=4, heads=4,
                    mlp_dim=192)
        return cls(**{**base, **overrides})

    @classmethod
    def vit_b_16(cls, **overrides) -> "ViTConfig":
        """ViT-Base/16 from the paper: 224 px, 196 patches of 16x16, 86.6 M parameters."""
        base = dict(image_size=224, patch_size=16, num_classes=1000, dim=768, depth=12, heads=12,
                    mlp_dim=3072)
        return cls(**{**base, **overrides})
