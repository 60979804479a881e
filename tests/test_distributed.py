"""`fit` under torchrun (DistributedDataParallel, gloo on the CPU) trains the same weights as
one process with the same global batch, writes one checkpoint, and resumes after a kill;
each process draws its own augmentation."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vit_core.data import TensorLoader

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

WORKER = Path(__file__).parent / "ddp_worker.py"


def torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(WORKER), str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    done = torchrun(out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, torch.load(out / "result.pt", weights_only=True)


def assert_same_run(a: dict, b: dict) -> None:
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], rtol=1e-4, atol=1e-5, msg=name)
    for x, y in zip(a["history"], b["history"], strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-5)
        assert x["train_acc"] == y["train_acc"]


@pytest.mark.slow
def test_two_processes_train_what_one_does(two_processes, tmp_path):
    _, result = two_processes
    torch.set_num_threads(1)
    alone = ddp_worker.train(tmp_path)
    assert_same_run(result, alone)
    torch.manual_seed(0)
    fresh = ddp_worker.ViT(ddp_worker.CONFIG).state_dict()  # the same start: training moved it
    assert not torch.allclose(fresh["head.weight"], result["model"]["head.weight"], atol=1e-3)


@pytest.mark.slow
def test_only_one_checkpoint_is_written(two_processes):
    out, _ = two_processes
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "history.json", "result.pt"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights(two_processes, tmp_path):
    _, uninterrupted = two_processes
    killed = torchrun(tmp_path, "--stop-at", "3")
    assert killed.returncode != 0 and not (tmp_path / "result.pt").exists()
    assert len(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["history"]) == 2
    resumed = torchrun(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(torch.load(tmp_path / "result.pt", weights_only=True), uninterrupted)


def loaders(augment: bool) -> list[TensorLoader]:
    image = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    images, labels = image.expand(64, -1, -1, -1).contiguous(), torch.arange(64)
    return [TensorLoader(images, labels, 16, train=True, augment=augment, device="cpu")
            for _ in range(3)]


def test_shards_split_each_global_batch():
    whole, first, second = loaders(augment=False)
    first.shard(0, 2), second.shard(1, 2)
    for (x, y), (x0, y0), (x1, y1) in zip(whole, first, second, strict=True):
        assert torch.equal(torch.cat([y0, y1]), y) and torch.equal(torch.cat([x0, x1]), x)


def test_each_process_draws_its_own_augmentation():
    _, first, second = loaders(augment=True)  # every image the same: only the draws differ
    first.shard(0, 2), second.shard(1, 2)
    (x0, _), (x1, _) = next(iter(first)), next(iter(second))
    assert not torch.equal(x0, x1)


def test_a_batch_the_processes_cannot_share_is_refused():
    with pytest.raises(ValueError, match="cannot be split evenly over 3 processes"):
        loaders(augment=False)[0].shard(0, 3)
