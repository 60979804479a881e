"""Load HuggingFace transformers' ViT weights (`ViTForImageClassification`, `ViTModel`, or
a state dict with its config.json) into `vit_core.ViT`.

Hub checkpoints (and transformers 4.x in memory) name a block `encoder.layer.{i}` split into
small classes; transformers 5.x in memory calls it `layers.{i}` with q_proj/k_proj/v_proj/
o_proj and mlp.fc1/fc2 (its save_pretrained writes the Hub names). Both are read; the
separate q, k and v projections are fused into vit_core's one `qkv`.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
import torch.nn as nn

from .loaders import StateDictMismatchError, _build, _describe, _mismatch
from .model import ViT, ViTConfig

_HF_BLOCK_PREFIX = {"hub": "encoder.layer.{i}.", "v5": "layers.{i}."}
# (vit_core name inside a block, Hub / transformers 4.x name, transformers 5.x name)
_HF_BLOCK_NAMES = [
    ("norm1", "layernorm_before", "layernorm_before"),
    ("attn.q", "attention.attention.query", "attention.q_proj"),  # q, k, v are fused into attn.qkv
    ("attn.k", "attention.attention.key", "attention.k_proj"),
    ("attn.v", "attention.attention.value", "attention.v_proj"),
    ("attn.proj", "attention.output.dense", "attention.o_proj"),
    ("norm2", "layernorm_after", "layernorm_after"),
    ("mlp.fc1", "intermediate.dense", "mlp.fc1"),
    ("mlp.fc2", "output.dense", "mlp.fc2"),
]
_HF_TOP_NAMES = [  # (vit_core name, HuggingFace name without the `vit.` prefix), both layouts
    ("cls_token", "embeddings.cls_token"), ("pos_embed", "embeddings.position_embeddings"),
    ("patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"),
    ("patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"),
    ("norm.weight", "layernorm.weight"), ("norm.bias", "layernorm.bias"),
]
_HF_HEAD = [("head.weight", "classifier.weight"), ("head.bias", "classifier.bias")]
_HF_REFUSED = {  # key prefix (without `vit.`) -> what vit_core does not model
    "decoder.": "the pixel decoder of ViTForMaskedImageModeling",
    "embeddings.mask_token": "the mask token of masked image modelling",
}
_HF_CLASSES = ("ViTForImageClassification", "ViTModel")


def _hf_config(config) -> dict:
    """A HuggingFace ViT config (config.json as a dict, or a `transformers.ViTConfig`), checked."""
    cfg = dict(config.to_dict() if hasattr(config, "to_dict") else config)
    problems = []
    if cfg.get("model_type", "vit") != "vit":
        problems.append(f"model_type {cfg['model_type']!r} is not 'vit'")
    if cfg.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act {cfg['hidden_act']!r} is not the exact GELU ('gelu') "
                        f"vit_core uses")
    for name in ("image_size", "patch_size"):
        value = cfg.get(name, 224 if name == "image_size" else 16)
        if isinstance(value, (list, tuple)):
            if len(set(value)) != 1:
                problems.append(f"{name} {value} is not square")
            value = value[0]
        cfg[name] = value
    if problems:
        raise ValueError("from_huggingface: " + "; ".join(problems))
    return cfg


def _hf_vit_config(cfg: dict, num_classes: int) -> ViTConfig:
    """vit_core's config from HuggingFace's, with HuggingFace's defaults (eps 1e-12, ViT-B/16
    sizes)."""
    return ViTConfig(image_size=cfg["image_size"], patch_size=cfg["patch_size"],
                     in_channels=cfg.get("num_channels", 3), num_classes=num_classes,
                     dim=cfg.get("hidden_size", 768), depth=cfg.get("num_hidden_layers", 12),
                     heads=cfg.get("num_attention_heads", 12),
                     mlp_dim=cfg.get("intermediate_size", 3072),
                     dropout=cfg.get("hidden_dropout_prob", 0.0),
                     attention_dropout=cfg.get("attention_probs_dropout_prob", 0.0),
                     qkv_bias=cfg.get("qkv_bias", True),
                     layer_norm_eps=cfg.get("layer_norm_eps", 1e-12))


def _hf_names(layout: str, config: ViTConfig, with_head: bool) -> dict[str, str]:
    """HuggingFace key -> vit_core key (q/k/v as attn.q/k/v, fused later) for one layout."""
    names = {hf: ours for ours, hf in _HF_TOP_NAMES + (_HF_HEAD if with_head else [])}
    column = 1 if layout == "hub" else 2
    for i in range(config.depth):
        for row in _HF_BLOCK_NAMES:
            for kind in ("weight", "bias"):
                qkv = row[0] in ("attn.q", "attn.k", "attn.v")
                if kind == "bias" and qkv and not config.qkv_bias:
                    continue
                names[_HF_BLOCK_PREFIX[layout].format(i=i) + f"{row[column]}.{kind}"] = \
                    f"encoder.blocks.{i}.{row[0]}.{kind}"
    return names


def _hf_shapes(names: dict[str, str], config: ViTConfig) -> dict[str, tuple]:
    """The shape each HuggingFace key must have: vit_core's, with q, k and v each a third of qkv."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        ours = {k: tuple(v.shape) for k, v in ViT(config).state_dict().items()}
    shapes = {}
    for hf, core in names.items():
        block, _, kind = core.rpartition(".")
        if block.endswith((".attn.q", ".attn.k", ".attn.v")):
            shapes[hf] = (config.dim, config.dim) if kind == "weight" else (config.dim,)
        else:
            shapes[hf] = ours[core]
    return shapes


def _hf_inputs(model_or_state_dict, config) -> tuple[dict, dict[str, torch.Tensor]]:
    """(checked config dict, state dict without the `vit.` prefix) from a model or a state dict.
    Refuses heads vit_core does not model, by name; drops the unused pooler with a warning."""
    if isinstance(model_or_state_dict, nn.Module):
        hf = model_or_state_dict
        if not {c.__name__ for c in type(hf).__mro__} & set(_HF_CLASSES):
            raise ValueError(f"from_huggingface reads {' and '.join(_HF_CLASSES)}, "
                             f"not {type(hf).__name__}")
        config = hf.config if config is None else config
        model_or_state_dict = hf.state_dict()
    if config is None:
        raise ValueError("from_huggingface: the number of heads and the LayerNorm eps cannot be "
                         "read from the weights; pass config= (the checkpoint's config.json as "
                         "a dict)")
    sd = {k.removeprefix("vit."): v for k, v in model_or_state_dict.items()}
    for prefix, what in _HF_REFUSED.items():
        found = [k for k in sd if k.startswith(prefix)]
        if found:
            raise ValueError(f"from_huggingface: {_describe(found)} is {what}, which vit_core "
                             f"does not model; it reads {' and '.join(_HF_CLASSES)} weights")
    pooler = [k for k in sd if k.startswith("pooler.")]
    if pooler:
        warnings.warn(f"from_huggingface: ignoring the pooler ({_describe(pooler)}), a Linear + "
                      f"tanh on the CLS token that ViTForImageClassification does not use "
                      f"either; vit_core has none",
                      stacklevel=3)
    return _hf_config(config), {k: v for k, v in sd.items() if not k.startswith("pooler.")}


def _hf_layout(sd: Mapping[str, torch.Tensor]) -> str:
    """'hub' (Hub checkpoints, transformers 4.x in memory) or 'v5' (transformers 5.x in memory)."""
    hub = any(k.startswith("encoder.layer.") for k in sd)
    v5 = any(k.startswith("layers.") for k in sd)
    if hub and v5:
        raise StateDictMismatchError("HuggingFace weights mix the Hub layout (encoder.layer.N) "
                                     "and the "
                                     "transformers 5 layout (layers.N)")
    return "v5" if v5 else "hub"


def _hf_fuse_qkv(sd: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Stack each block's separate q, k, v Linears into vit_core's fused qkv: rows
    [W_q; W_k; W_v]."""
    for i in range(depth):
        p = f"encoder.blocks.{i}.attn."
        for kind in ("weight", "bias"):
            if p + f"q.{kind}" in sd:
                parts = [sd.pop(p + f"{n}.{kind}") for n in "qkv"]  # 3 x (dim, dim) or (dim,)
                sd[p + f"qkv.{kind}"] = torch.cat(parts)  # (3*dim, dim) or (3*dim,)
    return sd


def from_huggingface(model_or_state_dict, config=None, *, num_classes: int | None = None,
                     image_size: int | None = None) -> ViT:
    """HuggingFace `ViTForImageClassification` / `ViTModel`, or a state dict with its config
    -> `ViT`.

    A state dict may use the Hub checkpoint names (`vit.encoder.layer.N.attention.attention.query`,
    also transformers 4.x in memory) or transformers 5.x's (`vit.layers.N.attention.q_proj`).
    `config` is the checkpoint's config.json as a dict (or a `transformers.ViTConfig`); it is
    required for a state dict, since the heads cannot be read from the weights, and it gives
    the LayerNorm eps (HuggingFace's default is 1e-12). A pooler is ignored with a warning;
    other heads are refused. `num_classes=` starts a fresh head (needed for a `ViTModel`,
    which has none); `image_size=` resizes the positions, as in the other loaders.
    """
    cfg, sd = _hf_inputs(model_or_state_dict, config)
    with_head = any(k.startswith("classifier.") for k in sd)
    if not with_head and num_classes is None:
        raise ValueError("from_huggingface: these weights have no classifier (a ViTModel, or "
                         "num_labels=0); "
                         "pass num_classes= to start a fresh head")
    if num_classes is not None:
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    classes = num_classes or (sd["classifier.weight"].shape[0] if "classifier.weight" in sd else
                              len(cfg.get("id2label") or {}) or cfg.get("num_labels", 2))
    vit_config, layout = _hf_vit_config(cfg, classes), _hf_layout(sd)
    names = _hf_names(layout, vit_config, with_head=num_classes is None)
    problems = _mismatch(_hf_shapes(names, vit_config), sd)
    if problems:
        raise StateDictMismatchError(f"HuggingFace weights ({layout} layout) do not fit "
                                     f"their config: "
                                     + " | ".join(problems))
    ours = _hf_fuse_qkv({names[k]: v for k, v in sd.items()}, vit_config.depth)
    return _build(ours, vit_config, image_size, "HuggingFace weights",
                  fresh_head=num_classes is not None)
