"""vit_core.model: patchify, attention, shapes, parameter counts and input checks."""
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
import torchvision
from einops import rearrange

from helpers import max_diff
from vit_core import Attention, PatchEmbedding, ViT, ViTConfig, resize_pos_embed

UNUSUAL = ViTConfig(image_size=64, patch_size=8, num_classes=7, dim=96, depth=3, heads=3, mlp_dim=192)


def patchify_reshape(images, p):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p)  # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # (B, num_patches, C*p*p)


def test_patchify_reshape_einops_and_conv_agree():
    torch.manual_seed(0)
    images, p, dim = torch.randn(2, 3, 32, 32), 4, 48
    by_reshape = patchify_reshape(images, p)
    by_einops = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=p, p2=p)
    assert torch.equal(by_reshape, by_einops)

    linear = torch.nn.Linear(3 * p * p, dim)
    embed = PatchEmbedding(ViTConfig.cifar10_tiny())
    with torch.no_grad():  # a Conv2d kernel is the Linear's weight rows folded back to (C, p, p)
        embed.proj.weight.copy_(linear.weight.reshape(dim, 3, p, p))
        embed.proj.bias.copy_(linear.bias)
    torch.testing.assert_close(embed(images), linear(by_einops), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", [ViTConfig.cifar10_tiny(), UNUSUAL], ids=["tiny", "unusual"])
def test_manual_attention_equals_sdpa(config):
    torch.manual_seed(0)
    attn = Attention(config).eval()
    x = torch.randn(3, config.seq_len, config.dim)
    fast = attn(x)
    manual, weights = attn.forward_with_weights(x)
    torch.testing.assert_close(fast, manual, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn.forward_cls(x), fast[:, :1], rtol=1e-5, atol=1e-6)
    assert weights.shape == (3, config.heads, config.seq_len, config.seq_len)
    q, k, v = attn.qkv(x).reshape(3, config.seq_len, 3, config.heads, -1).permute(2, 0, 3, 1, 4)
    by_hand = (q @ k.transpose(-2, -1) / (config.dim // config.heads) ** 0.5).softmax(-1)
    torch.testing.assert_close(weights, by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [ViTConfig.cifar10_tiny(), UNUSUAL], ids=["tiny", "unusual"])
def test_shapes_through_every_layer(config):
    model = ViT(config).eval()
    B = 2
    images = torch.randn(B, 3, config.image_size, config.image_size)
    assert model.patch_embed(images).shape == (B, config.num_patches, config.dim)
    tokens = model.embed(images)
    assert tokens.shape == (B, config.seq_len, config.dim)
    for block in model.blocks:
        tokens = block(tokens)
        assert tokens.shape == (B, config.seq_len, config.dim)
    assert model.blocks[0].mlp.fc1(tokens).shape == (B, config.seq_len, config.mlp_dim)
    assert model.norm(tokens)[:, 0].shape == (B, config.dim)
    logits, attentions = model(images, return_attention=True)
    assert logits.shape == (B, config.num_classes)
    assert len(attentions) == config.depth
    for a in attentions:
        assert a.shape == (B, config.heads, config.seq_len, config.seq_len)
        torch.testing.assert_close(a.sum(-1), torch.ones(B, config.heads, config.seq_len))
    torch.testing.assert_close(logits, model(images), rtol=1e-5, atol=1e-5)
    features = model.forward_features(images)
    assert features.shape == (B, config.seq_len, config.dim)
    torch.testing.assert_close(model.forward_head(features), logits, rtol=1e-5, atol=1e-5)
    assert not any(hasattr(block.attn, "weights") for block in model.blocks)  # no state is kept


def test_a_hook_on_the_last_block_sees_every_token_by_default():
    """The default forward is the textbook one: the last block outputs (B, N, dim), N = 65.
    The shortcut runs the last block's `forward_cls` instead, which hooks do not see."""
    model = ViT(ViTConfig.cifar10_tiny()).eval()
    seen = []
    model.blocks[-1].register_forward_hook(lambda module, args, output: seen.append(output.shape))
    model(torch.randn(2, 3, 32, 32))
    assert seen == [(2, 65, 48)]
    fast = ViT(ViTConfig.cifar10_tiny(cls_only_last_block=True)).eval()
    fast.blocks[-1].register_forward_hook(lambda module, args, output: seen.append(output.shape))
    fast(torch.randn(2, 3, 32, 32))
    assert seen == [(2, 65, 48)]
    tokens = fast.embed(torch.randn(2, 3, 32, 32))
    assert fast.encoder.forward_cls(tokens).shape == (2, 1, 48)  # the shortcut: only the CLS row


def test_no_weight_decay_names_the_learned_embeddings():
    tiny = dict(image_size=16, patch_size=4, dim=16, depth=1, heads=2, mlp_dim=32)
    assert ViT(ViTConfig(**tiny)).no_weight_decay() == {"pos_embed", "cls_token"}
    assert ViT(ViTConfig(**tiny, pos="sincos")).no_weight_decay() == {"cls_token"}  # a buffer
    assert ViT(ViTConfig(**tiny, pool="mean")).no_weight_decay() == {"pos_embed"}  # no CLS
    assert ViT(ViTConfig(**tiny, pool="seq", pos="sincos")).no_weight_decay() == set()
    model = ViT(ViTConfig(**tiny))
    names = dict(model.named_parameters())
    assert all(name in names for name in model.no_weight_decay())


def test_vit_b_16_parameter_count_equals_torchvision():
    ours = sum(p.numel() for p in ViT(ViTConfig.vit_b_16()).parameters())
    theirs = sum(p.numel() for p in torchvision.models.vit_b_16().parameters())
    assert ours == theirs == 86_567_656


def test_tiny_model_is_small():
    assert sum(p.numel() for p in ViT(ViTConfig.cifar10_tiny()).parameters()) < 200_000


def test_resize_pos_embed_keeps_cls_and_makes_the_new_grid():
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 8 * 8, 48)
    bigger = resize_pos_embed(pos, 14)
    assert bigger.shape == (1, 1 + 14 * 14, 48)
    assert torch.equal(bigger[:, 0], pos[:, 0])
    # A constant field stays constant under bicubic resizing.
    flat = torch.ones(1, 1 + 16, 4)
    torch.testing.assert_close(resize_pos_embed(flat, 7), torch.ones(1, 1 + 49, 4))


def test_resize_pos_embed_is_bicubic():
    """A 4x4 grid -> 8x8 equals torch's bicubic interpolation, value for value (bilinear differs)."""
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 16, 3)
    grid = pos[0, 1:].T.reshape(1, 3, 4, 4)  # (1, dim, g, g): channel c of patch (i, j)
    expected = {mode: F.interpolate(grid, size=(8, 8), mode=mode, align_corners=False).reshape(3, 64).T
                for mode in ("bicubic", "bilinear")}  # (64, dim) each
    resized = resize_pos_embed(pos, 8)[0, 1:]  # (64, dim)
    torch.testing.assert_close(resized, expected["bicubic"])
    assert max_diff(expected["bicubic"], expected["bilinear"]) > 0.05  # the check can tell them apart


def test_resize_image_size_lets_the_model_take_new_images():
    model = ViT(ViTConfig.cifar10_tiny()).eval()
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\).*\(1, 3, 48, 48\)"):
        model(torch.randn(1, 3, 48, 48))
    model.resize_image_size(48)
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 10)
    assert model.config.image_size == 48 and model.pos_embed.shape == (1, 1 + 12 * 12, 48)


@pytest.mark.parametrize("bad, message", [
    (dict(patch_size=5), "patch_size 5 must divide image_size 32"),
    (dict(dim=50), "dim 50 must be divisible by heads 4"),
    (dict(depth=0), "must be positive"),
    (dict(dropout=1.5), r"dropout probabilities must lie in \[0, 1\)"),
])
def test_bad_config_raises_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        ViTConfig.cifar10_tiny(**bad)


def test_wrong_channel_count_raises():
    model = ViT(ViTConfig.cifar10_tiny())
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, 32, 32\), got \(2, 1, 32, 32\)"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="got \\(3, 32, 32\\)"):
        model(torch.randn(3, 32, 32))


def test_dropout_only_in_training_mode():
    torch.manual_seed(0)
    model = ViT(ViTConfig.cifar10_tiny(dropout=0.5, attention_dropout=0.5))
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))
    assert not torch.allclose(F.softmax(model(x), -1), F.softmax(model.eval()(x), -1))


@pytest.mark.parametrize("config", [ViTConfig.cifar10_tiny(), UNUSUAL], ids=["tiny", "unusual"])
def test_cls_only_last_block_same_logits_and_gradients(config):
    """The shortcut (last block updates only CLS) must not change what the model computes."""
    torch.manual_seed(0)
    model = ViT(config).train()
    with torch.no_grad():  # every tensor random, so no zero bias or unit gain hides a mistake
        for p in model.parameters():
            p.normal_(0, 0.1)
    images = torch.randn(4, 3, config.image_size, config.image_size)
    labels = torch.randint(0, config.num_classes, (4,))
    results = {}
    for shortcut in (True, False):
        model.config = replace(config, cls_only_last_block=shortcut)
        model.zero_grad()
        logits = model(images)
        F.cross_entropy(logits, labels).backward()
        results[shortcut] = logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}
    torch.testing.assert_close(results[True][0], results[False][0], rtol=1e-5, atol=1e-6)
    for name, grad in results[False][1].items():
        torch.testing.assert_close(results[True][1][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    logits_with_maps, _ = model(images, return_attention=True)  # maps need every row: full path
    torch.testing.assert_close(logits_with_maps, results[True][0], rtol=1e-5, atol=1e-6)


def test_cls_only_last_block_skips_exactly_the_unread_work():
    """Multiply-adds saved per image: (N - 1) tokens skip proj, attention and MLP: (N-1)(D^2 + 2ND + 2DM)."""
    from torch.utils.flop_counter import FlopCounterMode
    config = ViTConfig.cifar10_tiny()
    with torch.device("meta"):  # shapes only; on meta SDPA runs as matmuls the counter sees
        model = ViT(config).eval()
    flops = {}
    for shortcut in (True, False):
        model.config = replace(config, cls_only_last_block=shortcut)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(1, 3, 32, 32, device="meta"))
        flops[shortcut] = counter.get_total_flops()
    N, D, M = config.seq_len, config.dim, config.mlp_dim
    assert (flops[False] - flops[True]) // 2 == (N - 1) * (D * D + 2 * N * D + 2 * D * M) == 1_726_464


def test_final_norm_gelu_and_init_options():
    """final_norm=False, gelu='tanh', init='normal' against the default."""
    torch.manual_seed(0)
    default = ViT(ViTConfig.cifar10_tiny())
    other = ViT(ViTConfig.cifar10_tiny(final_norm=False, gelu="tanh", init="normal"))
    assert isinstance(other.norm, torch.nn.Identity)
    assert not any(k.startswith("norm.") for k in other.state_dict())
    assert set(default.state_dict()) - set(other.state_dict()) == {"norm.weight", "norm.bias"}
    x = torch.randn(1000)
    assert torch.equal(other.blocks[0].mlp.act(x), F.gelu(x, approximate="tanh"))
    assert torch.equal(default.blocks[0].mlp.act(x), F.gelu(x))
    patch_std = lambda m: m.patch_embed.proj.weight.std().item()  # noqa: E731
    assert patch_std(other) == pytest.approx(0.02, rel=0.1)
    assert patch_std(default) == pytest.approx(48 ** -0.5, rel=0.1)
    images = torch.randn(2, 3, 32, 32)
    assert other(images).shape == default(images).shape == (2, 10)
    with pytest.raises(ValueError, match="gelu"):
        ViTConfig(gelu="relu")
    with pytest.raises(ValueError, match="init"):
        ViTConfig(init="xavier")
