"""vit_core: a small, tested Vision Transformer and the tools the notebooks share."""
from .model import Attention, Block, Encoder, MLP, PatchEmbedding, ViT, ViTConfig, resize_pos_embed
from .loaders import StateDictMismatchError, from_google_npz, from_timm, from_torchvision

__all__ = [
    "ViT", "ViTConfig", "PatchEmbedding", "Attention", "MLP", "Block", "Encoder", "resize_pos_embed",
    "from_torchvision", "from_timm", "from_google_npz", "StateDictMismatchError",
]
