"""The lessons' helper and its tools: every function that reads the environment, `setup()`,
the machine's one name, the pretrained-or-fallback helper, and the benchmark's command line
(tools.bench: one round of every variant on a tiny config)."""
import re
import socket

import pytest
import torch

import course
from course import env, pretrained
from tools import bench
from vit_core import ViTConfig

TINY = ViTConfig.cifar10_tiny(image_size=16, dim=32, depth=2, heads=2, mlp_dim=64, num_classes=4)


# ---------------------------------------------------------------- env

@pytest.mark.parametrize("value, profile", [(None, "full"), ("", "full"), ("full", "full"),
                                            ("smoke", "smoke"), (" Smoke ", "smoke")])
def test_profile_switch(monkeypatch, value, profile):
    if value is None:
        monkeypatch.delenv("VIT_PROFILE", raising=False)
    else:
        monkeypatch.setenv("VIT_PROFILE", value)
    assert env.get_profile() == profile
    assert env.is_smoke() == (profile == "smoke")
    assert env.pick(full=100, smoke=2) == (2 if profile == "smoke" else 100)
    assert env.downloads_allowed() == (profile == "full")


def test_unknown_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("VIT_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"VIT_PROFILE must be one of \('full', 'smoke'\), got 'fast'"):
        env.pick(full=1, smoke=2)


def test_data_dir_follows_vit_data(monkeypatch, tmp_path):
    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tmp_path / "absent.tar.xz")  # nothing to unpack (tests/test_fast_dev.py)
    monkeypatch.setenv("VIT_DATA", str(tmp_path / "drive" / "vit"))
    assert env.data_dir() == tmp_path / "drive" / "vit" and (tmp_path / "drive" / "vit").is_dir()
    monkeypatch.delenv("VIT_DATA")
    assert env.data_dir() == env.ROOT / "data"


def test_root_and_figures_are_the_repository(monkeypatch):
    for name in ("VIT_FIGURES", "VIT_FAST_DEV_RUN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIT_PROFILE", "full")  # the README's figures come from full-profile runs
    assert (env.ROOT / "vit_core" / "model.py").is_file() and (env.ROOT / "notebooks" / "course").is_dir()
    assert env.figures_dir() == env.ROOT / "figures"


def test_describe_prints_the_profile_first(monkeypatch, capsys):
    monkeypatch.setenv("VIT_PROFILE", "smoke")
    line = env.describe(torch.device("cpu"))
    assert capsys.readouterr().out == line + "\n" and "\n" not in line
    assert line.startswith(f"profile smoke · device cpu ({torch.get_num_threads()} threads) · data ")
    assert f"torch {torch.__version__}" in line


def test_setup_prints_one_line_and_returns_its_choices(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tmp_path / "absent.tar.xz")
    for name, value in (("VIT_PROFILE", "smoke"), ("VIT_DATA", str(tmp_path / "data")),
                        ("VIT_FIGURES", str(tmp_path / "figures"))):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIT_FAST_DEV_RUN", raising=False)
    here = course.setup()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("profile smoke · device ") and f"data {tmp_path / 'data'}" in out
    assert here == (env.get_profile(), env.get_device(), tmp_path / "data", tmp_path / "figures", False)
    assert here.data == here[2] and course.setup is env.setup and course.ROOT == env.ROOT


def test_hardware_is_one_name_for_records_and_timings(monkeypatch):
    """Records, the benchmark and the GPU check name a machine alike: 'CPU <model> (<n> cores),
    <threads>' (the threads of each stretch of epochs for a resumed run), or the GPU's name."""
    cpu = env.hardware("cpu")
    assert cpu.startswith("CPU ") and cpu.endswith(f" cores), {torch.get_num_threads()} torch thread(s)")
    resumed = [{"threads": 1}] * 15 + [{"threads": 2}] * 85
    assert env.hardware("cpu", resumed).endswith("torch thread(s): 1 (epochs 1-15), then 2 (epochs 16-100)")
    assert env.hardware("cpu", [{"threads": 2}] * 3).endswith(", 2 torch thread(s)")
    assert env.hardware("cpu", [{}]).endswith(f", {torch.get_num_threads()} torch thread(s)")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert env.hardware(torch.device("cuda")) == "NVIDIA H100 80GB HBM3"


# ---------------------------------------------------------------- pretrained or fall back

def test_smoke_profile_never_loads_pretrained_weights(monkeypatch, capsys):
    monkeypatch.setenv("VIT_PROFILE", "smoke")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed the network in smoke"))
    assert pretrained.imagenet_vit_b16(fallback="a stand-in") is None
    out = capsys.readouterr().out
    assert "smoke profile" in out and out.rstrip().endswith("-> a stand-in")


def test_offline_pretrained_weights_fall_back_with_the_reason(monkeypatch, capsys):
    monkeypatch.setenv("VIT_PROFILE", "full")

    def offline(address, timeout=None, **kwargs):
        assert timeout is not None
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "create_connection", offline)
    loads = []
    result = pretrained.load_or_none("test weights", lambda: loads.append(1), "https://example.org/w.pth", "STAND-IN")
    out = capsys.readouterr().out
    assert result is None and loads == []  # the download was never started
    assert "test weights are UNAVAILABLE" in out and "example.org" in out and out.rstrip().endswith("-> STAND-IN")


def test_pretrained_weights_load_when_cached_or_reachable(monkeypatch, tmp_path):
    monkeypatch.setenv("VIT_PROFILE", "full")
    probes = []
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: probes.append(address) or socket.socket())
    assert pretrained.load_or_none("w", lambda: "model", "https://example.org/w.pth", "none") == "model"
    assert probes == [("example.org", 443)]
    assert pretrained.load_or_none("w", lambda: "model", "https://example.org/w.pth", "none", cached=True) == "model"
    assert len(probes) == 1  # cached weights need no network
    failing = lambda: (_ for _ in ()).throw(RuntimeError("truncated file"))  # noqa: E731
    assert pretrained.load_or_none("w", failing, "https://example.org/w.pth", "none", cached=True) is None
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    assert not pretrained.in_hub_cache("https://download.pytorch.org/models/vit_b_16-c867db91.pth")
    (tmp_path / "checkpoints" / "vit_b_16-c867db91.pth").write_bytes(b"")
    assert pretrained.in_hub_cache("https://download.pytorch.org/models/vit_b_16-c867db91.pth")


# ---------------------------------------------------------------- benchmark

def test_bench_explore_runs_every_variant_once(capsys):
    torch.manual_seed(0)
    bench.main(["--device", "cpu", "--rounds", "1", "--steps", "1", "--batch-size", "4", "--explore"], config=TINY)
    out = capsys.readouterr().out
    for row in ("vit_core ", "vit_core, full last block", "timm ", "torchvision ", "vit_core (as is)",
                "vit_core reshape, no einops", "vit_core manual attention", "vit_core channels_last in",
                "vit_core AdamW foreach", "vit_core AdamW fused", "timm AdamW fused"):
        assert f"\n{row}" in out, f"row {row!r} missing from the benchmark's img/s lines"
        assert f"\n      {row.strip()} " in out, f"row {row!r} missing from torch.utils.benchmark.Compare's table"
    assert "cls_only_last_block=True" in out  # the table says which forward it timed
    diffs = [float(x.split()[-1]) for x in out.split("shared weights: ")[1].splitlines()[0].split(", ")]
    assert max(diffs) < 1e-4


def test_bench_variants_compute_the_same_logits():
    """The swapped-in forwards are what they claim: the same function, written differently."""
    fast = ViTConfig(**{**TINY.__dict__, "cls_only_last_block": True})
    torch.manual_seed(0)
    reference = bench.vit_core_variant(fast, "as is").eval()
    x = torch.randn(3, 3, 16, 16)
    for variant in ("reshape", "manual attention"):
        model = bench.vit_core_variant(fast, variant).eval()
        model.load_state_dict(reference.state_dict())
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_harness_is_apart_from_the_library():
    """vit_core never imports course, and no library file reads the environment."""
    for path in (env.ROOT / "vit_core").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from) course\b", text, re.M), f"{path.name} imports the harness"
        assert "os.environ" not in text and "getenv" not in text, f"{path.name} reads the environment"
        assert "../shared" not in text and '"shared"' not in text, f"{path.name} points at this machine's files"


def test_runs_label_stand_ins_and_describe_real_runs():
    from course import recipes, runs
    real = runs.record("improved-cpu")
    assert real is not None and not runs.is_stand_in(real)
    line = runs.describe(real)
    assert line.startswith("improved-cpu:") and f"{real['test_acc']:.1%}" in line and "STAND-IN" not in line
    small = dict(real, recipe=recipes.scaled_down(recipes.RECIPES["improved-cpu"]).name)
    assert runs.is_stand_in(small) and runs.describe(small).startswith("STAND-IN")


def test_lessons_import_no_tool():
    """course/ holds what a lesson imports; tools/ what maintainers run. Neither a lesson nor
    course imports tools (on Colab only course is installed)."""
    for path in [*(env.ROOT / "notebooks" / "course").glob("*.py"), *(env.ROOT / "notebooks").glob("[0-9][0-9]_*.py")]:
        assert not re.search(r"^\s*(import|from) tools\b", path.read_text(), re.M), f"{path.name} imports tools"
