"""Load weights made by torchvision, timm or the original Google JAX code into
`vit_core.ViT`, and write a `ViT` back out in Google's `.npz` format. HuggingFace
transformers' weights have their own loader, `huggingface.from_huggingface`, built on the
helpers here.

Each loader reads the config from the tensors' shapes (patch size, width, depth, MLP
width, image size, classes; `from_huggingface` reads config.json instead), renames every
tensor to vit_core's name, and loads it strictly: a missing, extra or wrong-shaped tensor
raises `StateDictMismatchError` naming the keys, never a silently half-loaded model.
"""
from __future__ import annotations

import math
import re
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
        raise StateDictMismatchError(f"{source} do not fit {type(model).__name__}: "
                                     + " | ".join(problems))
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
        raise StateDictMismatchError(f"{source}: cannot infer the config, "
                                     f"missing key(s): {_describe(missing)}")


def _infer_config(sd: Mapping[str, torch.Tensor], heads: int | None, eps: float,
                  source: str) -> ViTConfig:
    """Read a ViTConfig off the shapes of a state dict already in vit_core's names."""
    _require(sd, ["patch_embed.proj.weight", "pos_embed", "encoder.blocks.0.mlp.fc1.weight",
                  "head.weight"], source)
    dim, in_channels, patch, _ = sd["patch_embed.proj.weight"].shape
    grid = math.isqrt(sd["pos_embed"].shape[1] - 1)
    depth = len({k.split(".")[2] for k in sd if k.startswith("encoder.blocks.")})
    if heads is None:
        if dim % 64:
            raise ValueError(f"{source}: the number of heads cannot be read from a state dict "
                             f"and dim {dim} is not a multiple of the usual head width 64; "
                             f"pass heads=")
        heads = dim // 64  # ViT-Ti/S/B/L/H all use 64-wide heads
    return ViTConfig(image_size=grid * patch, patch_size=patch, in_channels=in_channels,
                     num_classes=sd["head.weight"].shape[0], dim=dim, depth=depth, heads=heads,
                     mlp_dim=sd["encoder.blocks.0.mlp.fc1.weight"].shape[0],
                     qkv_bias="encoder.blocks.0.attn.qkv.bias" in sd, layer_norm_eps=eps)


def _build(sd: dict, config: ViTConfig, image_size: int | None, source: str,
           fresh_head=False) -> ViT:
    """Make the model, load the weights strictly, then resize positions if asked to."""
    model = ViT(config)
    if fresh_head:  # keep the newly initialised head instead of the checkpoint's
        sd = {**sd, "head.weight": model.head.weight.data, "head.bias": model.head.bias.data}
    model = load_checked(model, sd, source)
    if image_size is not None and image_size != config.image_size:
        model.resize_image_size(image_size)
    return model.eval()


_TV_LAYER = r"encoder\.layers\.encoder_layer_(\d+)\."  # one torchvision encoder block
_TORCHVISION_RULES = [
    (r"class_token", "cls_token"),
    (r"conv_proj\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"encoder\.pos_embedding", "pos_embed"),
    (_TV_LAYER + r"ln_1\.(weight|bias)", r"encoder.blocks.\1.norm1.\2"),
    (_TV_LAYER + r"ln_2\.(weight|bias)", r"encoder.blocks.\1.norm2.\2"),
    (_TV_LAYER + r"self_attention\.in_proj_(weight|bias)", r"encoder.blocks.\1.attn.qkv.\2"),
    (_TV_LAYER + r"self_attention\.out_proj\.(weight|bias)", r"encoder.blocks.\1.attn.proj.\2"),
    (_TV_LAYER + r"mlp\.(?:0|linear_1)\.(weight|bias)", r"encoder.blocks.\1.mlp.fc1.\2"),
    (_TV_LAYER + r"mlp\.(?:3|linear_2)\.(weight|bias)", r"encoder.blocks.\1.mlp.fc2.\2"),
    (r"encoder\.ln\.(weight|bias)", r"norm.\1"),
    (r"heads\.head\.(weight|bias)", r"head.\1"),
]


def from_torchvision(model_or_state_dict, heads: int | None = None,
                     image_size: int | None = None) -> ViT:
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
        pool, prefix = getattr(tm, "global_pool", "token"), getattr(tm, "num_prefix_tokens", 1)
        if pool != "token" or prefix != 1:
            raise ValueError(f"from_timm expects CLS-token pooling and one prefix token, got "
                             f"global_pool={pool!r}, num_prefix_tokens={prefix}")
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
    mha = "MultiHeadDotProductAttention_1/"
    # query/key/value kernels are (dim, heads, head_dim): flatten the heads to (dim, dim),
    # then transpose (in, out) -> (out, in)
    qkv_w = [t(f"{mha}{n}/kernel").reshape(dim, dim).T for n in ("query", "key", "value")]
    qkv_b = [t(f"{mha}{n}/bias").reshape(dim) for n in ("query", "key", "value")]  # 3 x (dim,)
    out = {
        "norm1.weight": t("LayerNorm_0/scale"), "norm1.bias": t("LayerNorm_0/bias"),
        # stacked in vit_core's order [q; k; v]: (3*dim, dim) and (3*dim,)
        "attn.qkv.weight": torch.cat(qkv_w), "attn.qkv.bias": torch.cat(qkv_b),
        # out/kernel is (heads, head_dim, dim): flatten the heads, then (in, out) -> (out, in)
        "attn.proj.weight": t(f"{mha}out/kernel").reshape(dim, dim).T,  # (dim, dim)
        "attn.proj.bias": t(f"{mha}out/bias"),
        "norm2.weight": t("LayerNorm_2/scale"), "norm2.bias": t("LayerNorm_2/bias"),
        "mlp.fc1.weight": t("MlpBlock_3/Dense_0/kernel").T,  # (mlp_dim, dim)
        "mlp.fc1.bias": t("MlpBlock_3/Dense_0/bias"),
        "mlp.fc2.weight": t("MlpBlock_3/Dense_1/kernel").T,  # (dim, mlp_dim)
        "mlp.fc2.bias": t("MlpBlock_3/Dense_1/bias"),
    }
    return {f"encoder.blocks.{i}.{k}": v.contiguous() for k, v in out.items()}


def _npz_required_keys(depth: int) -> list[str]:
    block = ["LayerNorm_0/scale", "LayerNorm_0/bias", "LayerNorm_2/scale", "LayerNorm_2/bias",
             "MultiHeadDotProductAttention_1/out/kernel", "MultiHeadDotProductAttention_1/out/bias",
             *[f"MultiHeadDotProductAttention_1/{n}/{w}" for n in ("query", "key", "value")
               for w in ("kernel", "bias")],
             *[f"MlpBlock_3/Dense_{j}/{w}" for j in (0, 1) for w in ("kernel", "bias")]]
    top = ["embedding/kernel", "embedding/bias", "cls", "Transformer/posembed_input/pos_embedding",
           "Transformer/encoder_norm/scale", "Transformer/encoder_norm/bias"]
    return top + [f"Transformer/encoderblock_{i}/{k}" for i in range(depth) for k in block]


def _npz_check_keys(keys: set[str], num_classes: int | None) -> int:
    """Refuse a checkpoint with missing or unknown keys; returns its number of blocks."""
    depth = len({k.split("/")[1] for k in keys if k.startswith("Transformer/encoderblock_")})
    required = _npz_required_keys(depth)
    missing = [k for k in required if k not in keys]
    head_keys = {"head/kernel", "head/bias"}
    if num_classes is None:
        missing += sorted(head_keys - keys)
    if depth == 0 or missing:
        raise StateDictMismatchError(f"npz checkpoint is missing "
                                     f"{len(missing) or 'all encoder-block'} key(s): "
                                     f"{_describe(missing)}")
    extra = {k for k in keys if k.startswith("pre_logits/")}
    unknown = keys - set(required) - head_keys - extra
    if unknown:  # e.g. the ResNet stem of a hybrid R50+ViT checkpoint
        raise StateDictMismatchError(f"npz has {len(unknown)} key(s) vit_core does not model: "
                                     f"{_describe(unknown)}")
    if extra and num_classes is None:
        raise StateDictMismatchError(f"npz has a pre_logits layer ({_describe(extra)}) that "
                                     f"vit_core does not model; pass num_classes= to fine-tune "
                                     f"with a fresh head without it")
    return depth


def _npz_config(npz, depth: int, num_classes: int | None) -> ViTConfig:
    """The ViTConfig a Google checkpoint implies, read off its array shapes."""
    patch, _, in_channels, dim = np.asarray(npz["embedding/kernel"]).shape  # (p, p, C, dim)
    tokens = np.asarray(npz["Transformer/posembed_input/pos_embedding"]).shape[1]  # 1 + g*g
    block = "Transformer/encoderblock_0/"
    heads = np.asarray(npz[block + "MultiHeadDotProductAttention_1/query/kernel"]).shape[1]
    mlp_dim = np.asarray(npz[block + "MlpBlock_3/Dense_0/kernel"]).shape[1]
    return ViTConfig(image_size=math.isqrt(tokens - 1) * patch, patch_size=patch,
                     in_channels=in_channels, dim=dim, depth=depth, heads=heads,
                     num_classes=num_classes or np.asarray(npz["head/kernel"]).shape[1],
                     mlp_dim=mlp_dim)


def from_google_npz(path_or_mapping, num_classes: int | None = None,
                    image_size: int | None = None) -> ViT:
    """A google-research/vision_transformer `.npz` (the files jeonsworld/ViT-pytorch loads)
    -> `ViT`.

    `num_classes=None` keeps the checkpoint's `head/*`. Giving `num_classes` starts a fresh
    head of that size instead (ViT's own random init), dropping `head/*` and `pre_logits/*`;
    for the paper's and jeonsworld's zero head, follow with
    `vit_core.train.replace_head(model, num_classes, zero_init=True)`. A `pre_logits` layer is
    otherwise refused, since vit_core has none.
    """
    npz = path_or_mapping if isinstance(path_or_mapping, Mapping) else np.load(path_or_mapping)
    depth = _npz_check_keys(set(npz.keys()), num_classes)
    config = _npz_config(npz, depth, num_classes)
    f = lambda key: torch.from_numpy(np.asarray(npz[key], dtype=np.float32))  # noqa: E731
    kernel = f("embedding/kernel")  # (p, p, C, dim): height, width, in, out
    sd = {"patch_embed.proj.weight": kernel.permute(3, 2, 0, 1).contiguous(),  # (dim, C, p, p)
          "patch_embed.proj.bias": f("embedding/bias"), "cls_token": f("cls"),
          "pos_embed": f("Transformer/posembed_input/pos_embedding"),
          "norm.weight": f("Transformer/encoder_norm/scale"),
          "norm.bias": f("Transformer/encoder_norm/bias")}
    for i in range(depth):
        sd.update(_npz_block(npz, i, config.dim))
    if num_classes is None:
        sd.update({"head.weight": f("head/kernel").T.contiguous(), "head.bias": f("head/bias")})
    return _build(sd, config, image_size, "npz weights", fresh_head=num_classes is not None)


def _npz_block_out(sd: dict[str, np.ndarray], i: int, heads: int) -> dict[str, np.ndarray]:
    """One vit_core block as Google's arrays: Dense kernels (in, out), attention with a heads
    axis; a missing qkv bias becomes zeros (the same function)."""
    ours, theirs = f"encoder.blocks.{i}.", f"Transformer/encoderblock_{i}/"
    mha = theirs + "MultiHeadDotProductAttention_1/"
    D = sd[ours + "attn.proj.weight"].shape[0]
    d_h = D // heads
    qkv_bias = sd.get(ours + "attn.qkv.bias", np.zeros(3 * D, dtype=np.float32))
    weights = np.split(sd[ours + "attn.qkv.weight"], 3)  # 3 x (D, D): W_q, W_k, W_v
    biases = np.split(qkv_bias, 3)  # 3 x (D,)
    out = {}
    for name, w, b in zip(("query", "key", "value"), weights, biases):
        out[mha + f"{name}/kernel"] = w.T.reshape(D, heads, d_h)  # (D, heads, d_h)
        out[mha + f"{name}/bias"] = b.reshape(heads, d_h)  # (heads, d_h)
    proj = sd[ours + "attn.proj.weight"].T  # (D in, D out), the input being heads x d_h
    out[mha + "out/kernel"] = proj.reshape(heads, d_h, D)  # (heads, d_h, D)
    out[mha + "out/bias"] = sd[ours + "attn.proj.bias"]
    for j, norm in ((0, "norm1"), (2, "norm2")):
        out[theirs + f"LayerNorm_{j}/scale"] = sd[ours + f"{norm}.weight"]
        out[theirs + f"LayerNorm_{j}/bias"] = sd[ours + f"{norm}.bias"]
    for j, fc in ((0, "fc1"), (1, "fc2")):
        out[theirs + f"MlpBlock_3/Dense_{j}/kernel"] = sd[ours + f"mlp.{fc}.weight"].T  # (in, out)
        out[theirs + f"MlpBlock_3/Dense_{j}/bias"] = sd[ours + f"mlp.{fc}.bias"]
    return out


def to_google_npz(model: ViT, path=None) -> dict[str, np.ndarray]:
    """vit_core weights -> the arrays of a google-research/vision_transformer `.npz`, the
    inverse of `from_google_npz`; with `path`, also written there with `np.savez`.

    Flax stores Dense kernels (in, out), the patch convolution HWIO, and the attention kernels
    with their own heads axis. Google's format has no LayerNorm eps (its code uses 1e-6) and
    always has q/k/v biases, so a model with another eps is refused and one without q/k/v
    biases gets zero biases (the same function).
    """
    c = model.config
    if c.layer_norm_eps != 1e-6:
        raise ValueError(f"Google's npz format implies LayerNorm eps 1e-6; "
                         f"this model uses {c.layer_norm_eps}")
    sd = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    out = {"embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),  # (p, p, C, D)
           "embedding/bias": sd["patch_embed.proj.bias"], "cls": sd["cls_token"],
           "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
           "Transformer/encoder_norm/scale": sd["norm.weight"],
           "Transformer/encoder_norm/bias": sd["norm.bias"],
           "head/kernel": sd["head.weight"].T, "head/bias": sd["head.bias"]}  # (D, classes)
    for i in range(c.depth):
        out.update(_npz_block_out(sd, i, c.heads))
    out = {k: np.ascontiguousarray(v) for k, v in out.items()}
    if path is not None:
        np.savez(path, **out)
    return out
