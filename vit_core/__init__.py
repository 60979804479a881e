"""vit_core: a small, tested Vision Transformer library: model, weight loaders, data, training
loop, attention maps and plots. It reads no environment variable and writes only where its
caller says; copy this folder alone into your own work. Importing it loads torch, torchvision
and einops, never matplotlib (only `vit_core.plots` does)."""
from .huggingface import from_huggingface
from .loaders import (StateDictMismatchError, from_google_npz, from_timm, from_torchvision,
                      to_google_npz)
from .model import (MLP, Attention, Block, Encoder, PatchEmbedding, ViT, ViTConfig,
                    resize_pos_embed)

__all__ = [
    "ViT", "ViTConfig", "PatchEmbedding", "Attention", "MLP", "Block", "Encoder",
    "resize_pos_embed", "from_torchvision", "from_timm", "from_google_npz", "from_huggingface",
    "to_google_npz", "StateDictMismatchError",
]
