"""Load weights made by torchvision, timm, HuggingFace transformers or the original Google JAX
code into `vit_core.ViT`, and write a `ViT` back out in Google's `.npz` format.

Each loader reads the config from the tensors' shapes (patch size, width, depth, MLP
width, image size, classes; `from_huggingface` reads config.json instead), renames every
tensor to vit_core's name, and loads it strictly: a missing, extra or wrong-shaped tensor
raises `StateDictMismatchError` naming the keys, never a silently half-loaded model.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn as nn

from .model import ViT, ViTConfig


class StateDictMismatchError(ValueError):
    """The weights do not fit the model: lists the missing, unexpected and mis-shaped keys."""


def _describe(keys, limit=8) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _mismatch(expected: Mapping[str, tuple], given: Mapping[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and wrong-shaped keys between `expected` (key -> shape) and `given`."""
    missing = expected.keys() - given.keys()
    unexpected = given.keys() - expected.keys()
    wrong = [f"{k}: expected {tuple(expected[k])}, got {tuple(given[k].shape)}"
             for k in expected.keys() & given.keys() if tuple(expected[k]) != tuple(given[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_describe(unexpected)}")
    if wrong:
        problems.append(f"wrong shape for {len(wrong)} key(s): {'; '.join(sorted(wrong)[:8])}")
    return problems


def load_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "weights"):
    """`model.load_state_dict(strict=True)` with an error that names every offending key."""
    problems = _mismatch({k: v.shape for k, v in model.state_dict().items()}, state_dict)
    if problems:
        raise StateDictMismatchError(f"{source} do not fit {type(model).__name__}: " + " | ".join(problems))
    model.load_state_dict(state_dict, strict=True)
    return model


def _rename(state_dict: Mapping[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    """Apply the first matching (pattern, replacement) rule to each key; unmatched keys pass
    through unchanged, so `load_checked` reports them as unexpected."""
    out = {}
    for key, tensor in state_dict.items():
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        out[key] = tensor
    return out


def _require(state_dict, keys, source):
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise StateDictMismatchError(f"{source}: cannot infer the config, missing key(s): {_describe(missing)}")


def _infer_config(sd: Mapping[str, torch.Tensor], heads: int | None, eps: float, source: str) -> ViTConfig:
    """Read a ViTConfig off the shapes of a state dict already in vit_core's names."""
    _require(sd, ["patch_embed.proj.weight", "pos_embed", "encoder.blocks.0.mlp.fc1.weight", "head.weight"], source)
    dim, in_channels, patch, _ = sd["patch_embed.proj.weight"].shape
    grid = math.isqrt(sd["pos_embed"].shape[1] - 1)
    depth = len({k.split(".")[2] for k in sd if k.startswith("encoder.blocks.")})
    if heads is None:
        if dim % 64:
            raise ValueError(f"{source}: the number of heads cannot be read from a state dict and dim {dim} "
                             f"is not a multiple of the usual head width 64; pass heads=")
        heads = dim // 64  # ViT-Ti/S/B/L/H all use 64-wide heads
    return ViTConfig(image_size=grid * patch, patch_size=patch, in_channels=in_channels,
                     num_classes=sd["head.weight"].shape[0], dim=dim, depth=depth, heads=heads,
                     mlp_dim=sd["encoder.blocks.0.mlp.fc1.weight"].shape[0],
                     qkv_bias="encoder.blocks.0.attn.qkv.bias" in sd, layer_norm_eps=eps)


def _build(sd: dict, config: ViTConfig, image_size: int | None, source: str, fresh_head=False) -> ViT:
    """Make the model, load the weights strictly, then resize positions if asked to."""
    model = ViT(config)
    if fresh_head:  # keep the newly initialised head instead of the checkpoint's
        sd = {**sd, "head.weight": model.head.weight.data, "head.bias": model.head.bias.data}
    model = load_checked(model, sd, source)
    if image_size is not None and image_size != config.image_size:
        model.resize_image_size(image_size)
    return model.eval()


_TORCHVISION_RULES = [
    (r"class_token", "cls_token"),
    (r"conv_proj\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"encoder\.pos_embedding", "pos_embed"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.ln_1\.(weight|bias)", r"encoder.blocks.\1.norm1.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.ln_2\.(weight|bias)", r"encoder.blocks.\1.norm2.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)", r"encoder.blocks.\1.attn.qkv.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.(weight|bias)", r"encoder.blocks.\1.attn.proj.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\.(weight|bias)", r"encoder.blocks.\1.mlp.fc1.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\.(weight|bias)", r"encoder.blocks.\1.mlp.fc2.\2"),
    (r"encoder\.ln\.(weight|bias)", r"norm.\1"),
    (r"heads\.head\.(weight|bias)", r"head.\1"),
]


def from_torchvision(model_or_state_dict, heads: int | None = None, image_size: int | None = None) -> ViT:
    """torchvision `VisionTransformer` (e.g. `vit_b_16(weights=...)`) or its state dict -> `ViT`.

    torchvision's `nn.MultiheadAttention` stores q, k, v stacked in `in_proj_weight`, in the
    same order as vit_core's fused `qkv`, so every tensor copies over unchanged.
    """
    eps = 1e-6
    if isinstance(model_or_state_dict, nn.Module):
        tv = model_or_state_dict
        heads = heads or tv.encoder.layers[0].self_attention.num_heads
        eps = tv.encoder.ln.eps
        model_or_state_dict = tv.state_dict()
    sd = _rename(model_or_state_dict, _TORCHVISION_RULES)
    config = _infer_config(sd, heads, eps, "torchvision weights")
    return _build(sd, config, image_size, "torchvision weights")


def from_timm(model_or_state_dict, heads: int | None = None, image_size: int | None = None) -> ViT:
    """timm `VisionTransformer` with CLS-token pooling (e.g. `vit_base_patch16_224`) -> `ViT`.

    vit_core uses timm's parameter names, so only the blocks move under `encoder.`.
    """
    eps = 1e-6
    if isinstance(model_or_state_dict, nn.Module):
        tm = model_or_state_dict
        if getattr(tm, "global_pool", "token") != "token" or getattr(tm, "num_prefix_tokens", 1) != 1:
            raise ValueError(f"from_timm expects CLS-token pooling and one prefix token, got "
                             f"global_pool={tm.global_pool!r}, num_prefix_tokens={tm.num_prefix_tokens}")
        heads = heads or tm.blocks[0].attn.num_heads
        eps = tm.norm.eps
        model_or_state_dict = tm.state_dict()
    sd = _rename(model_or_state_dict, [(r"blocks\.(\d+)\.(.*)", r"encoder.blocks.\1.\2")])
    config = _infer_config(sd, heads, eps, "timm weights")
    return _build(sd, config, image_size, "timm weights")


def _npz_block(npz: Mapping[str, np.ndarray], i: int, dim: int) -> dict[str, torch.Tensor]:
    """One encoder block of a Google checkpoint, transposed to PyTorch's (out, in) layout."""
    p = f"Transformer/encoderblock_{i}/"
    t = lambda key: torch.from_numpy(np.asarray(npz[p + key], dtype=np.float32))  # noqa: E731
    # query/key/value kernels are (dim, heads, head_dim): flatten the heads, then (in, out) -> (out, in)
    qkv_w = [t(f"MultiHeadDotProductAttention_1/{n}/kernel").reshape(dim, dim).T for n in ("query", "key", "value")]
    qkv_b = [t(f"MultiHeadDotProductAttention_1/{n}/bias").reshape(dim) for n in ("query", "key", "value")]
    out = {
        "norm1.weight": t("LayerNorm_0/scale"), "norm1.bias": t("LayerNorm_0/bias"),
        "attn.qkv.weight": torch.cat(qkv_w), "attn.qkv.bias": torch.cat(qkv_b),  # (3*dim, dim), (3*dim,)
        # out/kernel is (heads, head_dim, dim): flatten the heads, then (in, out) -> (out, in)
        "attn.proj.weight": t("MultiHeadDotProductAttention_1/out/kernel").reshape(dim, dim).T,
        "attn.proj.bias": t("MultiHeadDotProductAttention_1/out/bias"),
        "norm2.weight": t("LayerNorm_2/scale"), "norm2.bias": t("LayerNorm_2/bias"),
        "mlp.fc1.weight": t("MlpBlock_3/Dense_0/kernel").T, "mlp.fc1.bias": t("MlpBlock_3/Dense_0/bias"),
        "mlp.fc2.weight": t("MlpBlock_3/Dense_1/kernel").T, "mlp.fc2.bias": t("MlpBlock_3/Dense_1/bias"),
    }
    return {f"encoder.blocks.{i}.{k}": v.contiguous() for k, v in out.items()}


def _npz_required_keys(depth: int) -> list[str]:
    block = ["LayerNorm_0/scale", "LayerNorm_0/bias", "LayerNorm_2/scale", "LayerNorm_2/bias",
             "MultiHeadDotProductAttention_1/out/kernel", "MultiHeadDotProductAttention_1/out/bias",
             *[f"MultiHeadDotProductAttention_1/{n}/{w}" for n in ("query", "key", "value") for w in ("kernel", "bias")],
             *[f"MlpBlock_3/Dense_{j}/{w}" for j in (0, 1) for w in ("kernel", "bias")]]
    top = ["embedding/kernel", "embedding/bias", "cls", "Transformer/posembed_input/pos_embedding",
           "Transformer/encoder_norm/scale", "Transformer/encoder_norm/bias"]
    return top + [f"Transformer/encoderblock_{i}/{k}" for i in range(depth) for k in block]


def from_google_npz(path_or_mapping, num_classes: int | None = None, image_size: int | None = None) -> ViT:
    """A google-research/vision_transformer `.npz` (the files jeonsworld/ViT-pytorch loads) -> `ViT`.

    `num_classes=None` keeps the checkpoint's `head/*`. Giving `num_classes` starts a fresh
    head of that size instead (ViT's own random init), dropping `head/*` and `pre_logits/*`;
    for the paper's and jeonsworld's zero head, follow with
    `vit_core.train.replace_head(model, num_classes, zero_init=True)`. A `pre_logits` layer is
    otherwise refused, since vit_core has none.
    """
    npz = np.load(path_or_mapping) if not isinstance(path_or_mapping, Mapping) else path_or_mapping
    keys = set(npz.keys())
    depth = len({k.split("/")[1] for k in keys if k.startswith("Transformer/encoderblock_")})
    missing = [k for k in _npz_required_keys(depth) if k not in keys]
    head_keys = {"head/kernel", "head/bias"}
    if num_classes is None:
        missing += sorted(head_keys - keys)
    if depth == 0 or missing:
        raise StateDictMismatchError(f"npz checkpoint is missing {len(missing) or 'all encoder-block'} key(s): "
                                     f"{_describe(missing)}")
    unknown = keys - set(_npz_required_keys(depth)) - head_keys - {k for k in keys if k.startswith("pre_logits/")}
    if unknown:  # e.g. the ResNet stem of a hybrid R50+ViT checkpoint, which vit_core does not model
        raise StateDictMismatchError(f"npz has {len(unknown)} key(s) vit_core does not model: {_describe(unknown)}")
    extra = {k for k in keys if k.startswith("pre_logits/")}
    if extra and num_classes is None:
        raise StateDictMismatchError(f"npz has a pre_logits layer ({_describe(extra)}) that vit_core does not "
                                     f"model; pass num_classes= to fine-tune with a fresh head without it")
    kernel = np.asarray(npz["embedding/kernel"])  # (p, p, C, dim): height, width, in, out
    patch, _, in_channels, dim = kernel.shape
    pos = torch.from_numpy(np.asarray(npz["Transformer/posembed_input/pos_embedding"], dtype=np.float32))
    heads = np.asarray(npz["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel"]).shape[1]
    config = ViTConfig(image_size=math.isqrt(pos.shape[1] - 1) * patch, patch_size=patch,
                       in_channels=in_channels, dim=dim, depth=depth, heads=heads,
                       num_classes=num_classes or np.asarray(npz["head/kernel"]).shape[1],
                       mlp_dim=np.asarray(npz["Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel"]).shape[1])
    f = lambda key: torch.from_numpy(np.asarray(npz[key], dtype=np.float32))  # noqa: E731
    sd = {"patch_embed.proj.weight": torch.from_numpy(kernel.astype(np.float32)).permute(3, 2, 0, 1).contiguous(),
          "patch_embed.proj.bias": f("embedding/bias"), "cls_token": f("cls"), "pos_embed": pos,
          "norm.weight": f("Transformer/encoder_norm/scale"), "norm.bias": f("Transformer/encoder_norm/bias")}
    for i in range(depth):
        sd.update(_npz_block(npz, i, dim))
    if num_classes is None:
        sd.update({"head.weight": f("head/kernel").T.contiguous(), "head.bias": f("head/bias")})
    return _build(sd, config, image_size, "npz weights", fresh_head=num_classes is not None)


def to_google_npz(model: ViT, path=None) -> dict[str, np.ndarray]:
    """vit_core weights -> the arrays of a google-research/vision_transformer `.npz`, the inverse
    of `from_google_npz`; with `path`, also written there with `np.savez`.

    Flax stores Dense kernels (in, out), the patch convolution HWIO, and the attention kernels
    with their own heads axis. Google's format has no LayerNorm eps (its code uses 1e-6) and
    always has q/k/v biases, so a model with another eps is refused and one without q/k/v
    biases gets zero biases (the same function).
    """
    c = model.config
    if c.layer_norm_eps != 1e-6:
        raise ValueError(f"Google's npz format implies LayerNorm eps 1e-6; "
                         f"this model uses {c.layer_norm_eps}")
    D, heads, d_h = c.dim, c.heads, c.dim // c.heads
    sd = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    out = {"embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),  # (p, p, C, D): HWIO
           "embedding/bias": sd["patch_embed.proj.bias"], "cls": sd["cls_token"],
           "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
           "Transformer/encoder_norm/scale": sd["norm.weight"],
           "Transformer/encoder_norm/bias": sd["norm.bias"],
           "head/kernel": sd["head.weight"].T, "head/bias": sd["head.bias"]}  # head (D, classes)
    for i in range(c.depth):
        ours, theirs = f"encoder.blocks.{i}.", f"Transformer/encoderblock_{i}/"
        mha = theirs + "MultiHeadDotProductAttention_1/"
        qkv_bias = sd.get(ours + "attn.qkv.bias", np.zeros(3 * D, dtype=np.float32))
        weights = np.split(sd[ours + "attn.qkv.weight"], 3)  # 3 x (D, D): W_q, W_k, W_v
        biases = np.split(qkv_bias, 3)  # 3 x (D,)
        for name, w, b in zip(("query", "key", "value"), weights, biases):
            out[mha + f"{name}/kernel"] = w.T.reshape(D, heads, d_h)  # (D, heads, d_h)
            out[mha + f"{name}/bias"] = b.reshape(heads, d_h)  # (heads, d_h)
        out[mha + "out/kernel"] = sd[ours + "attn.proj.weight"].T.reshape(heads, d_h, D)  # (heads, d_h, D)
        out[mha + "out/bias"] = sd[ours + "attn.proj.bias"]
        for j, norm in ((0, "norm1"), (2, "norm2")):
            out[theirs + f"LayerNorm_{j}/scale"] = sd[ours + f"{norm}.weight"]
            out[theirs + f"LayerNorm_{j}/bias"] = sd[ours + f"{norm}.bias"]
        for j, fc in ((0, "fc1"), (1, "fc2")):
            out[theirs + f"MlpBlock_3/Dense_{j}/kernel"] = sd[ours + f"mlp.{fc}.weight"].T  # (in, out)
            out[theirs + f"MlpBlock_3/Dense_{j}/bias"] = sd[ours + f"mlp.{fc}.bias"]
    out = {k: np.ascontiguousarray(v) for k, v in out.items()}
    if path is not None:
        np.savez(path, **out)
    return out


# HuggingFace transformers. Hub checkpoints (and transformers 4.x in memory) name a block
# `encoder.layer.{i}` split into small classes; transformers 5.x in memory calls it `layers.{i}`
# with q_proj/k_proj/v_proj/o_proj and mlp.fc1/fc2 (its save_pretrained writes the Hub names).
_HF_BLOCK_PREFIX = {"hub": "encoder.layer.{i}.", "v5": "layers.{i}."}
_HF_BLOCK_NAMES = [  # (vit_core name inside a block, Hub / transformers 4.x name, transformers 5.x name)
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
        problems.append(f"hidden_act {cfg['hidden_act']!r} is not the exact GELU ('gelu') vit_core uses")
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
    """vit_core's config from HuggingFace's, with HuggingFace's defaults (eps 1e-12, ViT-B/16 sizes)."""
    return ViTConfig(image_size=cfg["image_size"], patch_size=cfg["patch_size"],
                     in_channels=cfg.get("num_channels", 3), num_classes=num_classes,
                     dim=cfg.get("hidden_size", 768), depth=cfg.get("num_hidden_layers", 12),
                     heads=cfg.get("num_attention_heads", 12), mlp_dim=cfg.get("intermediate_size", 3072),
                     dropout=cfg.get("hidden_dropout_prob", 0.0),
                     attention_dropout=cfg.get("attention_probs_dropout_prob", 0.0),
                     qkv_bias=cfg.get("qkv_bias", True), layer_norm_eps=cfg.get("layer_norm_eps", 1e-12))


def _hf_names(layout: str, config: ViTConfig, with_head: bool) -> dict[str, str]:
    """HuggingFace key -> vit_core key (q/k/v as attn.q/k/v, fused later) for one layout."""
    names = {hf: ours for ours, hf in _HF_TOP_NAMES + (_HF_HEAD if with_head else [])}
    column = 1 if layout == "hub" else 2
    for i in range(config.depth):
        for row in _HF_BLOCK_NAMES:
            for kind in ("weight", "bias"):
                if kind == "bias" and row[0] in ("attn.q", "attn.k", "attn.v") and not config.qkv_bias:
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
            raise ValueError(f"from_huggingface reads {' and '.join(_HF_CLASSES)}, not {type(hf).__name__}")
        config = hf.config if config is None else config
        model_or_state_dict = hf.state_dict()
    if config is None:
        raise ValueError("from_huggingface: the number of heads and the LayerNorm eps cannot be read from "
                         "the weights; pass config= (the checkpoint's config.json as a dict)")
    sd = {k.removeprefix("vit."): v for k, v in model_or_state_dict.items()}
    for prefix, what in _HF_REFUSED.items():
        found = [k for k in sd if k.startswith(prefix)]
        if found:
            raise ValueError(f"from_huggingface: {_describe(found)} is {what}, which vit_core does not "
                             f"model; it reads {' and '.join(_HF_CLASSES)} weights")
    pooler = [k for k in sd if k.startswith("pooler.")]
    if pooler:
        warnings.warn(f"from_huggingface: ignoring the pooler ({_describe(pooler)}), a Linear + tanh on the "
                      f"CLS token that ViTForImageClassification does not use either; vit_core has none",
                      stacklevel=3)
    return _hf_config(config), {k: v for k, v in sd.items() if not k.startswith("pooler.")}


def _hf_layout(sd: Mapping[str, torch.Tensor]) -> str:
    """'hub' (Hub checkpoints, transformers 4.x in memory) or 'v5' (transformers 5.x in memory)."""
    hub, v5 = any(k.startswith("encoder.layer.") for k in sd), any(k.startswith("layers.") for k in sd)
    if hub and v5:
        raise StateDictMismatchError("HuggingFace weights mix the Hub layout (encoder.layer.N) and the "
                                     "transformers 5 layout (layers.N)")
    return "v5" if v5 else "hub"


def _hf_fuse_qkv(sd: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Stack each block's separate q, k, v Linears into vit_core's fused qkv: rows [W_q; W_k; W_v]."""
    for i in range(depth):
        p = f"encoder.blocks.{i}.attn."
        for kind in ("weight", "bias"):
            if p + f"q.{kind}" in sd:
                sd[p + f"qkv.{kind}"] = torch.cat([sd.pop(p + f"{n}.{kind}") for n in "qkv"])  # (3*dim, ...)
    return sd


def from_huggingface(model_or_state_dict, config=None, *, num_classes: int | None = None,
                     image_size: int | None = None) -> ViT:
    """HuggingFace `ViTForImageClassification` / `ViTModel`, or a state dict with its config -> `ViT`.

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
        raise ValueError("from_huggingface: these weights have no classifier (a ViTModel, or num_labels=0); "
                         "pass num_classes= to start a fresh head")
    if num_classes is not None:
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    classes = num_classes or (sd["classifier.weight"].shape[0] if "classifier.weight" in sd else
                              len(cfg.get("id2label") or {}) or cfg.get("num_labels", 2))
    vit_config, layout = _hf_vit_config(cfg, classes), _hf_layout(sd)
    names = _hf_names(layout, vit_config, with_head=num_classes is None)
    problems = _mismatch(_hf_shapes(names, vit_config), sd)
    if problems:
        raise StateDictMismatchError(f"HuggingFace weights ({layout} layout) do not fit their config: "
                                     + " | ".join(problems))
    ours = _hf_fuse_qkv({names[k]: v for k, v in sd.items()}, vit_config.depth)
    return _build(ours, vit_config, image_size, "HuggingFace weights", fresh_head=num_classes is not None)
