"""course.memory: the peak-memory estimate of a training step, measured on the meta device,
against the same measurement on real CPU tensors and against the published per-block count."""
import pytest
import torch

from course import memory
from vit_core import ViT, ViTConfig
from vit_core.train import TrainConfig, count_parameters, freeze_all_but_last

TINY = ViTConfig.cifar10_tiny()


@pytest.mark.parametrize("dtype", [None, torch.float16], ids=["float32", "float16"])
@pytest.mark.parametrize("frozen", [False, True], ids=["all blocks", "last 2 blocks"])
def test_meta_estimate_matches_real_cpu_tensors(dtype, frozen):
    """The meta device stands in for autocast and a fused attention kernel; a real forward on
    the CPU (whose attention kernel is fused too) must keep about the same bytes."""
    torch.manual_seed(0)
    model = ViT(TINY)
    if frozen:
        freeze_all_but_last(model, 2)
    meta = memory.step_memory(model, 32, TrainConfig(), dtype)
    cpu = memory.step_memory(model, 32, TrainConfig(), dtype, device="cpu")
    assert meta.static == cpu.static
    assert cpu.per_image > 0 and meta.per_image == pytest.approx(cpu.per_image, rel=0.1)
    assert meta.peak(128) == pytest.approx(cpu.peak(128), rel=0.05)


def test_frozen_blocks_keep_nothing_for_backward():
    torch.manual_seed(0)
    model = ViT(ViTConfig.cifar10_tiny(depth=6))
    full = memory.step_memory(model, 32, TrainConfig(), None).per_image
    freeze_all_but_last(model, 3)
    half = memory.step_memory(model, 32, TrainConfig(), None).per_image
    assert 0.4 < half / full < 0.6, f"3 of 6 blocks trainable kept {half / full:.0%} of the activations"


def test_static_bytes_per_parameter():
    model = ViT(TINY)
    trainable, total = count_parameters(model)
    assert memory.step_memory(model, 32, TrainConfig(optimizer="adamw"), None).static == 16 * total
    assert memory.step_memory(model, 32, TrainConfig(optimizer="sgd"), None).static == 12 * total
    freeze_all_but_last(model, 1)
    trainable, total = count_parameters(model)
    assert memory.step_memory(model, 32, TrainConfig(optimizer="adam"), None).static == 16 * trainable + 4 * (total - trainable)


def test_vit_b16_activations_match_the_published_count():
    """Korthikanti et al. (2022) count 34 bytes per token and channel per block for a 16-bit
    transformer block (32 without its dropout masks; attention scores not kept, as with a fused
    kernel); a ViT block is that block, with a float32 residual stream under autocast."""
    config = ViTConfig.vit_b_16(num_classes=100)
    with torch.device("meta"):
        model = ViT(config)  # shapes only: nothing to allocate or initialise
    estimate = memory.step_memory(model, 224, TrainConfig(), torch.float16)
    per_block = estimate.per_image / (config.seq_len * config.dim * config.depth)
    assert 30 < per_block < 45, f"{per_block:.1f} bytes per token, channel and block"
    assert 9 < estimate.peak(128) / memory.GB < 15  # the 08 improved recipe's step at batch 128 fits a T4


def test_largest_fitting_halves_until_the_step_fits():
    step = memory.StepMemory(static=2e9, fixed_activations=0.0, per_image=0.1e9)  # + 1 GB overhead
    assert step.peak(100) == pytest.approx(13e9)
    assert memory.largest_fitting(step, 100, limit_gb=15) == 100
    assert memory.largest_fitting(step, 256, limit_gb=15) == 64   # 256: 28.6 GB, 128: 15.8, 64: 9.4
    assert memory.largest_fitting(step, 256, limit_gb=1) == 1


def test_t4_dtype_follows_the_config():
    assert memory.t4_dtype(TrainConfig()) == torch.float16
    assert memory.t4_dtype(TrainConfig(amp=False)) is None
    assert memory.t4_dtype(TrainConfig(amp_dtype="bfloat16")) == torch.bfloat16


def test_plan_batch_prints_the_estimate_and_the_batch(capsys, monkeypatch):
    monkeypatch.delenv("VIT_FAST_DEV_RUN", raising=False)
    with torch.device("meta"):
        model = ViT(ViTConfig.vit_b_16(num_classes=10))
    batch = memory.plan_batch(model, 512, 224, TrainConfig(), label="test step")
    out = capsys.readouterr().out
    assert batch == 128 and "test step: estimated peak GPU memory at batch 512, 224 px, float16 on a T4" in out
    assert "-> batch 128 (halved to fit 15 GB)" in out
    monkeypatch.setenv("VIT_FAST_DEV_RUN", "1")
    assert memory.plan_batch(model, 64, 224, TrainConfig()) == 4
    assert "fast dev run: batch 64 -> 4" in capsys.readouterr().out


def test_sizes_print_in_units_that_show_them():
    assert memory._size(1.37e9) == "1.37 GB" and memory._size(0.1e9) == "0.10 GB"
    assert memory._size(1.9e6) == "1.9 MB"  # a 32 px model's weights and AdamW state, not "0.00 GB"
