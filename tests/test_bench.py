"""tools.bench --models small-data: the final recipe's ViT against timm's and torchvision's
nearest equivalents and the ladder's ResNet. The peers are built to the recipe's sizes, make
the same token grid and logits shapes, differ in parameters only by what their designs add,
and the size check fails where a model is not the same size. Timing runs one tiny round."""
from dataclasses import replace

import pytest
import torch

from tools import bench
from vit_core import ViT, ViTConfig

SMALL = ViTConfig.cifar10_tiny(stem="conv", pool="seq", patch_size=8, dim=32, heads=2, mlp_dim=64,
                               depth=2, num_classes=4)  # 3 conv layers, a 4x4 token grid


def test_small_data_rows_follow_the_final_recipe():
    config, cnn = bench.small_data_configs()
    sizes = (config.image_size, config.patch_size, config.dim, config.depth, config.heads,
             config.mlp_dim, config.num_classes)
    assert sizes == (32, 4, 48, 4, 4, 192, 10)
    assert (config.stem, config.pool, config.cls_only_last_block) == ("conv", "seq", False)
    models = bench.build_small_data(config, cnn)
    timm_model, tv_model = models[bench.TIMM_ROW], models[bench.TV_ROW]
    assert timm_model.cls_token is None and timm_model.global_pool == "avg"
    assert isinstance(timm_model.patch_embed, bench.TimmConvTokenizer)
    assert len(timm_model.blocks) == 4 and timm_model.blocks[0].mlp.fc1.out_features == 192
    assert timm_model.blocks[0].attn.num_heads == 4 and timm_model.embed_dim == 48
    strides = [m.stride for m in tv_model.conv_proj.modules() if isinstance(m, torch.nn.Conv2d)]
    assert strides == [(2, 2), (2, 2), (1, 1)]  # two stride-2 3x3 layers, then the 1x1 conv
    assert len(tv_model.encoder.layers) == 4 and tv_model.hidden_dim == 48
    assert tv_model.mlp_dim == 192 and tv_model.encoder.layers[0].num_heads == 4


def test_small_data_parameter_counts_differ_only_by_design():
    """timm lacks only vit_core's sequence-pooling score; torchvision adds two BatchNorms, the
    1x1 conv, the CLS token and its position; all three ViTs are within SIZE_RATIO."""
    config, cnn = bench.small_data_configs()
    counts = bench.check_sizes(bench.build_small_data(config, cnn), config)
    d = config.dim
    assert counts[bench.TIMM_ROW] == counts[bench.VIT_ROW] - (d + 1)
    assert counts[bench.TV_ROW] == counts[bench.TIMM_ROW] + 2 * 2 * d + (d * d + d) + 2 * d
    ratio = counts[bench.CNN_ROW] / counts[bench.VIT_ROW]
    assert 1 / bench.SIZE_RATIO[bench.CNN_ROW] <= ratio <= bench.SIZE_RATIO[bench.CNN_ROW]


def test_size_check_fails_on_a_bigger_peer():
    config, cnn = bench.small_data_configs()
    models = bench.build_small_data(config, cnn)
    models[bench.TIMM_ROW] = bench.timm_small_data(replace(config, depth=config.depth + 1))
    with pytest.raises(AssertionError, match="timm"):
        bench.check_sizes(models, config)


@pytest.mark.parametrize("small", [False, True])
def test_small_data_models_give_the_same_shapes(small):
    """Every ViT makes grid x grid tokens of width dim and every model (batch, classes) logits,
    at the recipe's sizes and at another config (the builders follow the config)."""
    config, cnn = bench.small_data_configs()
    if small:
        config, cnn = SMALL, replace(cnn, num_classes=SMALL.num_classes)
    shapes = bench.check_shapes(bench.build_small_data(config, cnn), config, batch=3)
    grid = config.image_size // config.patch_size
    assert set(shapes["tokens"].values()) == {(3, grid * grid, config.dim)}
    assert set(shapes["logits"].values()) == {(3, config.num_classes)}
    assert len(shapes["logits"]) == 4


def test_timm_tokenizer_makes_vit_cores_tokens():
    """With the same weights, the tokenizer timm is given computes vit_core's conv stem."""
    torch.manual_seed(0)
    vit, peer = ViT(SMALL), bench.timm_small_data(SMALL)
    peer.patch_embed.stem.load_state_dict(vit.patch_embed.state_dict())
    x = torch.randn(2, 3, SMALL.image_size, SMALL.image_size)
    torch.testing.assert_close(peer.patch_embed(x), vit.patch_embed(x))


def test_bench_small_data_runs_every_row_once(capsys):
    torch.manual_seed(0)
    result = bench.main(["--device", "cpu", "--models", "small-data", "--rounds", "1", "--steps",
                         "1", "--batch-size", "4"])
    out = capsys.readouterr().out
    rows = [bench.VIT_ROW, bench.TIMM_ROW, bench.TV_ROW, bench.CNN_ROW]
    for key in ("train_img_per_s", "inference_img_per_s"):
        assert list(result[key]) == rows and min(result[key].values()) > 0
    for row in rows:
        assert out.count(f"\n{row} ") == 3, f"{row!r}: not in the sizes and both img/s lists"
        assert out.count(f"\n      {row} ") == 2, f"{row!r}: not in both Compare tables"
    assert "[ training steps, 32 px, batch 4" in out and "[ inference, 32 px, batch 4" in out
    assert f"{torch.get_num_threads()} threads: " in out


def test_explore_is_for_the_tiny_models_only():
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--models", "small-data", "--explore"])
