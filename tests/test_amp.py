"""Mixed precision that fits the device: the dtype choice per GPU (capability mocked), the
explicit override, and the float16 + GradScaler path run for real on the CPU (it learns,
skipped steps do not stop it, and it resumes bit for bit)."""
import json

import pytest
import torch

from vit_core import train
from vit_core.model import ViT

from test_train import TINY, TIMING, InterruptAt, loaders, quiet_fit

FP16 = train.TrainConfig(epochs=2, lr=3e-3, warmup_epochs=0.5, amp_dtype="float16")


def fake_gpu(monkeypatch, capability, bf16_supported):
    """Make torch.cuda report a GPU of this compute capability (nothing runs on it)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16_supported)


@pytest.mark.parametrize("gpu, capability, bf16_supported, expected", [
    ("T4", (7, 5), True, torch.float16),     # bf16 only emulated: float16 + a gradient scaler
    ("V100", (7, 0), False, torch.float16),
    ("A100", (8, 0), True, torch.bfloat16),
    ("L4", (8, 9), True, torch.bfloat16),
    ("H100", (9, 0), True, torch.bfloat16),
    ("capability 8 without bf16", (8, 6), False, torch.float16),
])
def test_amp_dtype_follows_the_gpu(monkeypatch, gpu, capability, bf16_supported, expected):
    fake_gpu(monkeypatch, capability, bf16_supported)
    assert train.amp_dtype(torch.device("cuda")) == expected, gpu


def test_amp_dtype_is_off_on_the_cpu_unless_forced(monkeypatch):
    fake_gpu(monkeypatch, (9, 0), True)  # a GPU in the machine changes nothing for the CPU
    assert train.amp_dtype(torch.device("cpu")) is None
    assert train.amp_dtype("cpu", "float16") == torch.float16
    assert train.amp_dtype("cuda", "bfloat16") == torch.bfloat16
    assert train.amp_dtype("cuda", "float16") == torch.float16  # the override wins on an H100 too
    with pytest.raises(ValueError, match=r"amp_dtype must be None or one of \('bfloat16', 'float16'\), got 'fp8'"):
        train.amp_dtype("cpu", "fp8")


def test_the_scaler_is_on_for_float16_only(tmp_path):
    for name, config, scaled in [("fp32", train.TrainConfig(epochs=1), False),
                                 ("bf16", train.TrainConfig(epochs=1, amp_dtype="bfloat16"), False),
                                 ("fp16", train.TrainConfig(epochs=1, amp_dtype="float16"), True),
                                 ("fp16, amp off", train.TrainConfig(epochs=1, amp=False, amp_dtype="float16"), False)]:
        torch.manual_seed(0)
        quiet_fit(ViT(TINY), *loaders(), config, out_dir=tmp_path / name)
        scaler = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["scaler"]
        assert bool(scaler) == scaled, f"{name}: scaler state {scaler}"


def test_float16_with_grad_scaler_learns_on_the_cpu(tmp_path):
    torch.manual_seed(0)
    model = ViT(TINY)
    seen = []
    model.blocks[0].attn.qkv.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    history = quiet_fit(model, *loaders(), train.TrainConfig(epochs=3, lr=3e-3, amp_dtype="float16"), out_dir=tmp_path)
    assert set(seen) == {torch.float16}, "the matrix multiplies should have run in float16"
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"] and history[-1]["test_acc"] > 0.6
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay float32
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["scaler"]["scale"] > 1


def test_skipped_steps_do_not_trip_the_non_finite_stop(tmp_path, monkeypatch):
    """A scale of 2**40 overflows float16 gradients: the scaler skips those updates and halves
    the scale until it fits. The loss stays finite throughout, so training goes on and learns."""
    real_scaler = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda *a, **k: real_scaler(*a, **{**k, "init_scale": 2.0 ** 40}))
    torch.manual_seed(0)
    model = ViT(TINY)
    before = [p.detach().clone() for p in model.parameters()]
    history = quiet_fit(model, *loaders(), train.TrainConfig(epochs=6, lr=3e-3, amp_dtype="float16"),
                        out_dir=tmp_path)
    scale = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["scaler"]["scale"]
    assert scale <= 2.0 ** 40 / 2 ** 10, f"expected at least 10 skipped steps, the scale is still {scale:g}"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "no step was ever taken"
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_float16_run_resumes_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    straight = ViT(TINY)
    reference = quiet_fit(straight, *loaders(), FP16, out_dir=tmp_path / "straight")

    torch.manual_seed(0)
    train_loader, test_loader = loaders()
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(ViT(TINY), InterruptAt(train_loader, epoch=2, step=3), test_loader, FP16, out_dir=tmp_path / "run")
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1

    torch.manual_seed(123)
    resumed = ViT(TINY)
    history = quiet_fit(resumed, *loaders(), FP16, out_dir=tmp_path / "run", resume=True)
    strip = lambda hs: [{k: v for k, v in h.items() if k not in TIMING} for h in hs]  # noqa: E731
    assert strip(history) == strip(reference)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"
    scalers = [torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["scaler"] for run in ("straight", "run")]
    assert scalers[0] == scalers[1] and scalers[0]["scale"] > 1
