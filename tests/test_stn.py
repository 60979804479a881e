"""course.stn: identity start, shapes, the grid maths by hand, and gradients into the localisation net."""
import math

import pytest
import torch
import torch.nn.functional as F

from course.stn import IDENTITY_THETA, SpatialTransformer, STNClassifier, STNConfig


def images(n=4, size=32, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", [32, 24, 48])
def test_identity_at_init_leaves_images_unchanged(size):
    stn = SpatialTransformer(STNConfig(image_size=size))
    x = images(size=size)
    theta = stn.theta(x)  # (B, 2, 3)
    assert torch.equal(theta, torch.tensor(IDENTITY_THETA).view(1, 2, 3).expand_as(theta))
    assert (stn(x) - x).abs().max() < 5e-5  # float32 rounding of the grid coordinates


def test_identity_holds_under_autocast():
    """fit trains in bfloat16 autocast on GPUs; the sampling grid must stay float32 (in bfloat16
    the identity map moves pixels and changes values by tenths of the image's scale)."""
    stn = SpatialTransformer(STNConfig())
    x = images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = stn(x)
    assert out.dtype == torch.float32 and (out - x).abs().max() < 5e-5


@pytest.mark.parametrize("use_stn", [True, False])
def test_shapes_and_parameter_layout(use_stn):
    config = STNConfig(spatial_transformer=use_stn, num_classes=7)
    model = STNClassifier(config)
    assert model(images()).shape == (4, 7)
    keys = {k.split(".")[0] for k in model.state_dict()}
    assert keys == ({"stn", "classifier"} if use_stn else {"classifier"})
    assert model.classifier.head[0].in_features == 20 * 5 * 5  # 32 -> 28 -> 14 -> 10 -> 5
    if use_stn:
        assert model.stn.regressor[0].in_features == 10 * 4 * 4  # 32 -> 26 -> 13 -> 9 -> 4
        assert model.stn.theta(images()).shape == (4, 2, 3)


def test_same_seed_same_classifier_in_both_arms():
    """The two arms differ only by the front end: built after the same seed, their classifiers
    start with equal weights, and the identity front end gives the same logits."""
    torch.manual_seed(0)
    without = STNClassifier(STNConfig(spatial_transformer=False)).eval()
    torch.manual_seed(0)
    with_stn = STNClassifier(STNConfig(spatial_transformer=True)).eval()
    theirs = without.classifier.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in with_stn.classifier.state_dict().items())
    x = images()
    assert torch.allclose(with_stn(x), without(x), atol=1e-5)


def test_gradient_reaches_the_localisation_net():
    """At the identity start the last layer's weights are zero, so the first backward reaches
    only that layer; after one step the gradient flows into the convolutions as well."""
    torch.manual_seed(0)
    model = STNClassifier(STNConfig())
    x, y = images(16), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(x), y).backward()
    last, first_conv = model.stn.regressor[-1], model.stn.features[0]
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0
    assert first_conv.weight.grad.abs().sum() == 0
    optimizer.step()
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    assert first_conv.weight.grad.abs().sum() > 0
    assert not torch.allclose(model.stn.theta(x), torch.tensor(IDENTITY_THETA).view(1, 2, 3).expand(16, 2, 3))


def test_warp_matches_the_grid_maths_by_hand():
    """align_corners=False: pixel j's centre sits at (2j + 1) / W - 1; theta maps output to source."""
    stn = SpatialTransformer(STNConfig())
    x = images(1)
    a, s = math.radians(25), 0.7
    theta = torch.tensor([[[s * math.cos(a), -s * math.sin(a), 0.15], [s * math.sin(a), s * math.cos(a), -0.1]]])
    out = stn.warp(x, theta)
    i, j, size = 9, 21, 32
    xo, yo = (2 * j + 1) / size - 1, (2 * i + 1) / size - 1
    xs, ys = (theta[0] @ torch.tensor([xo, yo, 1.0])).tolist()
    u, v = ((xs + 1) * size - 1) / 2, ((ys + 1) * size - 1) / 2  # source position in pixels
    u0, v0 = math.floor(u), math.floor(v)
    du, dv = u - u0, v - v0
    value = ((1 - du) * (1 - dv) * x[0, :, v0, u0] + du * (1 - dv) * x[0, :, v0, u0 + 1]
             + (1 - du) * dv * x[0, :, v0 + 1, u0] + du * dv * x[0, :, v0 + 1, u0 + 1])
    assert torch.allclose(out[0, :, i, j], value, atol=1e-5)


def test_bad_input_and_config_are_refused():
    with pytest.raises(ValueError, match="too small"):
        STNConfig(image_size=16)
    with pytest.raises(ValueError, match="dropout"):
        STNConfig(dropout=1.0)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 32, 32\), got \(2, 3, 28, 28\)"):
        STNClassifier(STNConfig())(torch.zeros(2, 3, 28, 28))
