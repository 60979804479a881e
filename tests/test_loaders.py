"""The three weight loaders give the source model's logits, and refuse weights that do not fit."""
import numpy as np
import pytest
import torch
import torchvision
from timm.models.vision_transformer import VisionTransformer as TimmViT

from vit_core import (StateDictMismatchError, ViT, ViTConfig, from_google_npz, from_timm, from_torchvision,
                      to_google_npz)

# (image_size, patch, dim, depth, heads, mlp_dim, classes)
CONFIGS = {
    "seed": (32, 4, 48, 4, 4, 192, 10),
    "unusual": (64, 8, 96, 3, 3, 192, 7),
    "vit_b_16": (224, 16, 768, 12, 12, 3072, 1000),
}
TOLERANCE = 1e-4  # max |logit difference| in fp32


def randomise(module, seed=0):
    """Random weights everywhere (LayerNorm and biases too), so no tensor can be ignored unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return module.eval()


def torchvision_vit(size, patch, dim, depth, heads, mlp, classes):
    return randomise(torchvision.models.VisionTransformer(
        image_size=size, patch_size=patch, num_layers=depth, num_heads=heads, hidden_dim=dim,
        mlp_dim=mlp, num_classes=classes))


def timm_vit(size, patch, dim, depth, heads, mlp, classes):
    return randomise(TimmViT(img_size=size, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                             mlp_ratio=mlp / dim, num_classes=classes))


def max_logit_diff(a, b, size):
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


@pytest.mark.parametrize("name", CONFIGS)
def test_from_torchvision_matches_logits(name):
    args = CONFIGS[name]
    source = torchvision_vit(*args)
    model = from_torchvision(source)
    assert (model.config.image_size, model.config.patch_size, model.config.dim, model.config.depth,
            model.config.heads, model.config.mlp_dim, model.config.num_classes) == args
    assert max_logit_diff(model, source, args[0]) <= TOLERANCE


@pytest.mark.parametrize("name", CONFIGS)
def test_from_timm_matches_logits(name):
    args = CONFIGS[name]
    source = timm_vit(*args)
    model = from_timm(source)
    assert model.config.num_classes == args[-1] and model.config.heads == args[4]
    assert max_logit_diff(model, source, args[0]) <= TOLERANCE


def test_state_dicts_load_with_heads_given_or_inferred():
    unusual = torchvision_vit(*CONFIGS["unusual"])
    model = from_torchvision(unusual.state_dict(), heads=3)
    assert max_logit_diff(model, unusual, 64) <= TOLERANCE
    with pytest.raises(ValueError, match="dim 96 is not a multiple of the usual head width 64; pass heads="):
        from_torchvision(unusual.state_dict())
    timm_b = timm_vit(224, 16, 128, 1, 2, 256, 5)  # dim 128 -> 2 heads of 64, inferred
    assert from_timm(timm_b.state_dict()).config.heads == 2
    assert max_logit_diff(from_timm(timm_b.state_dict()), timm_b, 224) <= TOLERANCE


@pytest.mark.parametrize("name", CONFIGS)
def test_from_google_npz_matches_logits(name, tmp_path):
    size, patch, dim, depth, heads, mlp, classes = CONFIGS[name]
    source = randomise(ViT(ViTConfig(image_size=size, patch_size=patch, dim=dim, depth=depth, heads=heads,
                                     mlp_dim=mlp, num_classes=classes)))
    path = tmp_path / "ckpt.npz"
    to_google_npz(source, path)
    model = from_google_npz(path)
    assert model.config == source.config
    assert max_logit_diff(model, source, size) <= TOLERANCE


def test_to_google_npz_writes_googles_layouts():
    """Shapes of the published format, written out by hand: Dense kernels (in, out), the patch
    convolution HWIO, attention kernels with a heads axis."""
    config = ViTConfig(image_size=64, patch_size=8, dim=96, depth=2, heads=3, mlp_dim=192, num_classes=7)
    source = randomise(ViT(config))
    arrays, b = to_google_npz(source), "Transformer/encoderblock_1/"
    expected = {"embedding/kernel": (8, 8, 3, 96), "cls": (1, 1, 96), "head/kernel": (96, 7),
                "Transformer/posembed_input/pos_embedding": (1, 65, 96),
                b + "MultiHeadDotProductAttention_1/query/kernel": (96, 3, 32),
                b + "MultiHeadDotProductAttention_1/value/bias": (3, 32),
                b + "MultiHeadDotProductAttention_1/out/kernel": (3, 32, 96),
                b + "MlpBlock_3/Dense_0/kernel": (96, 192), b + "MlpBlock_3/Dense_1/kernel": (192, 96)}
    assert {k: arrays[k].shape for k in expected} == expected
    np.testing.assert_array_equal(arrays[b + "MlpBlock_3/Dense_0/kernel"],
                                  source.blocks[1].mlp.fc1.weight.detach().numpy().T)
    key_w = source.blocks[1].attn.qkv.weight.detach().numpy()[96:192]  # rows D:2D of the fused qkv are W_k
    head_1 = arrays[b + "MultiHeadDotProductAttention_1/key/kernel"][:, 1]  # (D, d_h): head 1's key kernel
    np.testing.assert_array_equal(head_1, key_w.T[:, 32:64])
    with pytest.raises(ValueError, match="implies LayerNorm eps 1e-6; this model uses 1e-12"):
        to_google_npz(ViT(ViTConfig.cifar10_tiny(layer_norm_eps=1e-12)))


def test_npz_missing_keys_and_pre_logits_are_named():
    source = randomise(ViT(ViTConfig(**{**ViTConfig.cifar10_tiny().__dict__, "depth": 2})))
    mapping = to_google_npz(source)
    broken = {k: v for k, v in mapping.items() if "encoderblock_1/MlpBlock_3/Dense_1" not in k}
    with pytest.raises(StateDictMismatchError, match="missing 2 key.*encoderblock_1/MlpBlock_3/Dense_1/bias"):
        from_google_npz(broken)
    with pytest.raises(StateDictMismatchError, match="missing 2 key.*head/bias, head/kernel"):
        from_google_npz({k: v for k, v in mapping.items() if not k.startswith("head/")})
    with_pre_logits = {**mapping, "pre_logits/kernel": np.zeros((48, 48)), "pre_logits/bias": np.zeros(48)}
    with pytest.raises(StateDictMismatchError, match="pre_logits"):
        from_google_npz(with_pre_logits)
    hybrid = {**mapping, "conv_root/kernel": np.zeros((7, 7, 3, 64))}  # an R50+ViT stem
    with pytest.raises(StateDictMismatchError, match="1 key.*does not model: conv_root/kernel"):
        from_google_npz(hybrid)
    fresh = from_google_npz(with_pre_logits, num_classes=3)  # fine-tuning: new head, pre_logits dropped
    assert fresh.head.out_features == 3
    torch.testing.assert_close(fresh.pos_embed, source.pos_embed)


def test_bad_state_dicts_name_the_offending_keys():
    sd = torchvision_vit(*CONFIGS["seed"]).state_dict()
    missing = {k: v for k, v in sd.items() if k != "encoder.layers.encoder_layer_2.ln_2.bias"}
    with pytest.raises(StateDictMismatchError, match=r"missing 1 key\(s\): encoder.blocks.2.norm2.bias"):
        from_torchvision(missing, heads=4)
    extra = {**sd, "encoder.layers.encoder_layer_0.extra_scale": torch.ones(48)}
    with pytest.raises(StateDictMismatchError, match="unexpected 1 key.*encoder_layer_0.extra_scale"):
        from_torchvision(extra, heads=4)
    wrong = {**sd, "encoder.layers.encoder_layer_1.mlp.3.bias": torch.zeros(50)}
    with pytest.raises(StateDictMismatchError, match=r"encoder.blocks.1.mlp.fc2.bias: expected \(48,\), got \(50,\)"):
        from_torchvision(wrong, heads=4)
    assert issubclass(StateDictMismatchError, ValueError)


def test_loader_resizes_positions_on_request():
    source = timm_vit(*CONFIGS["seed"])
    model = from_timm(source, image_size=48)
    assert model.config.image_size == 48 and model(torch.randn(1, 3, 48, 48)).shape == (1, 10)
    assert torch.equal(model.pos_embed[:, 0], source.pos_embed[:, 0].detach())


def test_timm_average_pooling_is_refused():
    with pytest.raises(ValueError, match="CLS-token pooling"):
        from_timm(TimmViT(img_size=32, patch_size=4, embed_dim=48, depth=1, num_heads=4, global_pool="avg"))
