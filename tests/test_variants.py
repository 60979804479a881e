"""The small-data options of ViTConfig (stem, pool, pos), flip test-time augmentation and the
comparison ResNet: each one does what its docstring says, and the defaults stay the paper's ViT."""
import pytest
import torch
import torch.nn as nn

from vit_core import ViT, ViTConfig
from vit_core.model import sincos_pos_embed
from vit_core.train import evaluate

TINY = dict(image_size=32, patch_size=4, num_classes=10, dim=32, depth=2, heads=4, mlp_dim=64)


def tiny(**overrides) -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig(**{**TINY, **overrides})).eval()


@pytest.mark.parametrize("stem", ["patch", "conv"])
@pytest.mark.parametrize("pool", ["cls", "mean", "seq"])
@pytest.mark.parametrize("pos", ["learned", "sincos"])
def test_every_combination_trains(stem, pool, pos):
    model = tiny(stem=stem, pool=pool, pos=pos).train()
    logits = model(torch.randn(3, 3, 32, 32))
    assert logits.shape == (3, 10)
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing}"


@pytest.mark.parametrize("patch_size", [2, 4, 8])
def test_conv_stem_makes_the_patch_grid(patch_size):
    images = torch.randn(2, 3, 32, 32)
    conv, patch = tiny(stem="conv", patch_size=patch_size), tiny(patch_size=patch_size)
    assert conv.patch_embed(images).shape == patch.patch_embed(images).shape
    assert len(conv.patch_embed.convs) == 3 * {2: 1, 4: 2, 8: 3}[patch_size]


def test_conv_stem_is_local():
    """A pixel in the top-left corner changes only tokens near it, unlike attention."""
    model = tiny(stem="conv")
    a = torch.zeros(1, 3, 32, 32)
    b = a.clone()
    b[0, :, 0, 0] = 5.0
    changed = (model.patch_embed(a) - model.patch_embed(b)).abs().sum(-1)[0] > 0  # (64,)
    assert changed[0] and changed.sum() < 8, changed.nonzero().flatten().tolist()


def test_conv_stem_refuses_odd_patch_sizes():
    with pytest.raises(ValueError, match="patch_size must be 2, 4 or 8"):
        ViTConfig(**{**TINY, "image_size": 30, "patch_size": 3, "stem": "conv"})


@pytest.mark.parametrize("pool", ["mean", "seq"])
def test_pooled_models_have_no_cls_token(pool):
    model = tiny(pool=pool)
    assert not hasattr(model, "cls_token")
    assert model.embed(torch.randn(2, 3, 32, 32)).shape == (2, 64, 32)
    assert model.config.seq_len == 64


def test_seq_pool_with_equal_scores_is_mean_pool():
    seq, mean = tiny(pool="seq"), tiny(pool="mean")
    nn.init.zeros_(seq.seq_pool.score.weight)  # equal scores for every token
    seq.load_state_dict({k: v for k, v in mean.state_dict().items()}, strict=False)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(seq(x), mean(x))
    nn.init.normal_(seq.seq_pool.score.weight)  # learned scores: no longer the plain mean
    assert not torch.allclose(seq(x), mean(x), atol=1e-4)


def test_sincos_positions_are_fixed():
    model = tiny(pos="sincos")
    assert "pos_embed" not in dict(model.named_parameters())
    assert "pos_embed" in model.state_dict()  # saved with the weights
    torch.testing.assert_close(model.pos_embed[0, 1:], sincos_pos_embed(8, 32))
    torch.testing.assert_close(model.pos_embed[0, 0], torch.zeros(32))  # CLS: no position
    assert tiny(pos="sincos", pool="mean").pos_embed.shape == (1, 64, 32)


def test_sincos_similarity_depends_only_on_offset():
    table = sincos_pos_embed(8, 32).view(8, 8, 32)
    one_right = (table[:, :-1] * table[:, 1:]).sum(-1)  # every pair one column apart
    torch.testing.assert_close(one_right, one_right[0, 0].expand_as(one_right))


def test_cls_only_last_block_needs_a_cls_token():
    with pytest.raises(ValueError, match="needs pool='cls'"):
        ViTConfig(**TINY, pool="mean", cls_only_last_block=True)


@pytest.mark.parametrize("name, value", [("stem", "convs"), ("pool", "max"), ("pos", "rope")])
def test_unknown_options_are_refused(name, value):
    with pytest.raises(ValueError, match=f"{name} must be"):
        ViTConfig(**TINY, **{name: value})


def test_defaults_are_the_paper_vit():
    c = ViTConfig()
    assert (c.stem, c.pool, c.pos) == ("patch", "cls", "learned")
    keys = set(tiny().state_dict())
    assert {"cls_token", "pos_embed", "patch_embed.proj.weight"} <= keys
    assert not any(k.startswith("seq_pool") for k in keys)


def test_flip_tta_averages_image_and_mirror():
    model = tiny()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    with torch.no_grad():
        expected = ((model(x) + model(x.flip(-1))) / 2).argmax(-1)
    acc = evaluate(model, [(x, y)], flip=True, amp=False)["acc"]
    assert acc == (expected == y).float().mean().item()
    plain = evaluate(model, [(x, y)], amp=False)["acc"]
    assert plain == (model(x).argmax(-1) == y).float().mean().item()


def test_resnet_is_a_small_cnn():
    from course.cnn import ResNet, ResNetConfig
    torch.manual_seed(0)
    model = ResNet(ResNetConfig())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    params = sum(p.numel() for p in model.parameters())
    vit = sum(p.numel() for p in ViT(ViTConfig.cifar10_tiny()).parameters())
    assert vit / 2 < params < vit * 2, (params, vit)  # "of similar parameter count"
    with pytest.raises(ValueError):
        ResNetConfig(widths=())
