"""Attention-map tools checked against patterns whose answer is worked out by hand."""
import math

import pytest
import torch

from vit_core.attention_maps import (attention_rollout, cls_attention, mean_attention_distance, patch_distances,
                                     pos_embed_similarity, relevance_to_image, shuffle_patches, sincos_pos_embed)
from vit_core.model import ViT, ViTConfig


def one_layer(weights_rows):
    """A single (N, N) attention pattern -> a one-layer list of (1, 1, N, N) weights."""
    return [torch.tensor(weights_rows, dtype=torch.float32)[None, None]]


def test_rollout_of_self_attention_gives_cls_nothing_from_patches():
    eye = torch.eye(5).expand(2, 3, 5, 5)  # (B, heads, N, N): every token attends to itself
    relevance = attention_rollout([eye, eye, eye])
    assert relevance.shape == (2, 4)
    assert torch.allclose(relevance, torch.zeros(2, 4))


def test_rollout_of_uniform_attention_matches_closed_form():
    # With U = 11^T / N (idempotent), A = U/2 + I/2 and A^L = (1 - 2^-L) U + 2^-L I.
    N, L = 5, 3
    uniform = torch.full((1, 2, N, N), 1.0 / N)
    relevance = attention_rollout([uniform] * L)
    expected = (1 - 0.5 ** L) / N
    assert torch.allclose(relevance, torch.full((1, N - 1), expected))


def test_rollout_multiplies_layers_in_forward_order():
    # Layer 1: every token attends to token 2. Layer 2: CLS attends to token 1, the rest to token 3.
    first = one_layer([[0, 0, 1, 0]] * 4)
    second = one_layer([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]])
    # Row 0 of A2 @ A1 = 0.5 A1[0] + 0.5 A1[1] = [0.25, 0.25, 0.5, 0] (worked out by hand).
    assert torch.allclose(attention_rollout(first + second), torch.tensor([[0.25, 0.5, 0.0]]))
    # The reverse order gives a different answer, so the test sees a swapped product.
    assert torch.allclose(attention_rollout(second + first), torch.tensor([[0.25, 0.25, 0.25]]))


def test_rollout_discard_ratio_drops_weakest_weights_but_keeps_self():
    layer = one_layer([[0.1, 0.2, 0.3, 0.4]] * 4)
    # discard 0.5 of 4 -> 2 weights zeroed per row; the CLS self weight 0.1 survives, 0.2 and 0.3 go.
    # Row 0: 0.5 * [0.1, 0, 0, 0.4] + 0.5 * e0 = [0.55, 0, 0, 0.2], renormalised by 0.75.
    relevance = attention_rollout(layer, discard_ratio=0.5)
    assert torch.allclose(relevance, torch.tensor([[0.0, 0.0, 0.2 / 0.75]]))
    assert torch.allclose(attention_rollout(layer, discard_ratio=0.0), torch.tensor([[0.1, 0.15, 0.2]]))


def test_rollout_head_fusion_modes_differ_and_are_validated():
    N = 4
    heads = torch.stack([torch.eye(N), torch.full((N, N), 1.0 / N)])[None]  # (1, 2, N, N)
    by_min = attention_rollout([heads], head_fusion="min")  # min of (I, U) has no off-diagonal mass
    by_max = attention_rollout([heads], head_fusion="max")
    by_mean = attention_rollout([heads], head_fusion="mean")
    assert torch.allclose(by_min, torch.zeros(1, N - 1))
    assert torch.allclose(by_mean, torch.full((1, N - 1), 0.5 * 0.5 / N))
    # max: row 0 = [1, 1/4, 1/4, 1/4] -> mixed [1, 1/8, 1/8, 1/8] / 1.375
    assert torch.allclose(by_max, torch.full((1, N - 1), 0.125 / 1.375))
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout([heads], head_fusion="median")
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout([heads], discard_ratio=1.0)


def test_cls_attention_reads_row_zero_of_the_chosen_layer():
    torch.manual_seed(0)
    layers = [torch.rand(2, 3, 5, 5).softmax(-1) for _ in range(4)]
    assert torch.equal(cls_attention(layers), layers[-1][:, :, 0, 1:])
    assert torch.equal(cls_attention(layers, layer=1), layers[1][:, :, 0, 1:])
    with pytest.raises(ValueError, match="return_attention"):
        cls_attention([None, None])


def test_mean_distance_of_self_attention_is_zero():
    eye = torch.eye(1 + 9).expand(2, 4, 10, 10)  # 3x3 grid plus CLS
    distance = mean_attention_distance([eye, eye], grid_size=3, patch_size=8)
    assert distance.shape == (2, 4)
    assert torch.allclose(distance, torch.zeros(2, 4))


def test_mean_distance_of_hand_built_pattern():
    # 2x2 grid of 4-pixel patches. Head 0: self only. Head 1: every query sends half its weight
    # to CLS and half to the top-left patch, whose distances are 0, 4, 4 and 4*sqrt(2) pixels.
    N = 5
    self_only = torch.eye(N)
    to_corner = torch.zeros(N, N)
    to_corner[:, 0] = 0.5
    to_corner[:, 1] = 0.5
    weights = torch.stack([self_only, to_corner])[None]  # (1, 2, N, N)
    distance = mean_attention_distance([weights], grid_size=2, patch_size=4)
    expected = (0 + 4 + 4 + 4 * math.sqrt(2)) / 4  # CLS weight is dropped and the row renormalised
    assert torch.allclose(distance, torch.tensor([[0.0, expected]]))


def test_mean_distance_accepts_patch_tokens_without_cls_and_checks_grid():
    uniform = torch.full((1, 1, 4, 4), 0.25)  # 2x2 grid, no CLS
    assert torch.allclose(mean_attention_distance([uniform], 2, 4),
                          torch.tensor([[(8 + 4 * math.sqrt(2)) / 4]]))
    with pytest.raises(ValueError, match="tokens"):
        mean_attention_distance([uniform], grid_size=3, patch_size=4)


def test_patch_distances_are_pixel_distances_in_row_major_order():
    d = patch_distances(3, 10)
    assert d.shape == (9, 9)
    assert d[0, 2].item() == pytest.approx(20.0)  # same row, two columns apart
    assert d[0, 8].item() == pytest.approx(20 * math.sqrt(2))  # opposite corners


def test_pos_embed_similarity_diagonal_symmetry_and_hand_values():
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 16, 8)
    similarity = pos_embed_similarity(pos)
    assert similarity.shape == (4, 4, 4, 4)
    flat = similarity.reshape(16, 16)
    assert torch.allclose(flat.diagonal(), torch.ones(16), atol=1e-6)
    assert torch.allclose(flat, flat.T, atol=1e-6)
    hand = torch.tensor([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])  # CLS first
    s = pos_embed_similarity(hand)
    assert s[0, 0, 0, 1].item() == pytest.approx(0.0, abs=1e-6)  # orthogonal
    assert s[0, 0, 1, 0].item() == pytest.approx(-1.0)  # opposite
    assert s[0, 0, 1, 1].item() == pytest.approx(1 / math.sqrt(2))


def test_relevance_to_image_scales_each_map_to_unit_range():
    relevance = torch.tensor([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 6.0]])
    maps = relevance_to_image(relevance, image_size=16)
    assert maps.shape == (2, 16, 16)
    assert torch.allclose(maps.amin(dim=(1, 2)), torch.zeros(2))
    assert torch.allclose(maps.amax(dim=(1, 2)), torch.ones(2))
    assert maps[0, 0, 0] < maps[0, -1, -1]  # the top-left patch was least relevant


def test_tools_work_on_a_real_model():
    torch.manual_seed(0)
    config = ViTConfig.cifar10_tiny()
    model = ViT(config).eval()
    with torch.no_grad():
        _, attentions = model(torch.randn(3, 3, 32, 32), return_attention=True)
    relevance = attention_rollout(attentions)
    assert relevance.shape == (3, config.num_patches)
    assert (relevance >= 0).all() and (relevance.sum(-1) < 1).all()  # the CLS row sums to 1 with CLS
    distance = mean_attention_distance(attentions, config.grid_size, config.patch_size)
    assert distance.shape == (config.depth, config.heads)
    max_distance = patch_distances(config.grid_size, config.patch_size).max()
    assert (distance > 0).all() and (distance < max_distance).all()
    assert pos_embed_similarity(model.pos_embed).shape == (8, 8, 8, 8)


def test_sincos_rows_have_equal_length_and_offset_only_dot_products():
    pe = sincos_pos_embed(4, 8)  # (16, 8): 4x4 grid, 2 frequencies per quarter
    assert pe.shape == (16, 8)
    torch.testing.assert_close(pe.norm(dim=1), torch.full((16,), 2.0))  # sqrt(dim / 2)
    # Patch (0, 0) is [sin 0, cos 0] twice per frequency: zeros and ones, worked out by hand.
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]))
    # Row 1, column 2 (patch 6) at frequencies 1 and 10000^-1/2 = 0.01.
    omega = torch.tensor([1.0, 0.01])
    torch.testing.assert_close(pe[6], torch.cat([omega.sin(), omega.cos(), (2 * omega).sin(), (2 * omega).cos()]))
    gram = pe @ pe.T  # (16, 16): the same offset gives the same dot product anywhere on the grid
    assert gram[0, 5].item() == pytest.approx(gram[10, 15].item(), abs=1e-5)  # both one step down and right
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_pos_embed(4, 6)


def test_shuffle_patches_moves_whole_patches_to_their_new_places():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    perm = torch.tensor([3, 2, 1, 0])  # 2x2 grid of 2 px patches, order reversed
    out = shuffle_patches(images, 2, perm)
    assert out.shape == images.shape
    assert torch.equal(out[:, :, :2, :2], images[:, :, 2:, 2:])  # slot 0 holds patch 3 (bottom right)
    assert torch.equal(out[:, :, :2, 2:], images[:, :, 2:, :2])  # slot 1 holds patch 2 (bottom left)
    assert torch.equal(shuffle_patches(images, 2, torch.arange(4)), images)
    assert torch.equal(shuffle_patches(out, 2, perm), images)  # reversing twice restores the image


def test_relevance_to_image_share_keeps_shares_comparable():
    relevance = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])  # uniform, and all on one patch
    maps = relevance_to_image(relevance, image_size=8, scale="share")  # (2, 8, 8), 4x4 blocks
    assert torch.allclose(maps[0], torch.full((8, 8), 0.25))  # uniform stays flat at 1/4, not stretched
    assert maps[1, :4, :4].eq(1.0).all() and maps[1, 4:].eq(0).all() and maps[1, :4, 4:].eq(0).all()
    with pytest.raises(ValueError, match="scale must be"):
        relevance_to_image(relevance, 8, scale="max")
