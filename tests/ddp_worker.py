"""One process of tests/test_distributed.py: train a small ViT with `fit` on made-up images,
alone or as one of several processes under torchrun, and save what the test compares."""
import argparse
from pathlib import Path

import torch

from vit_core import ViT, ViTConfig
from vit_core.data import TensorLoader
from vit_core.distributed import init_from_env, is_main
from vit_core.train import TrainConfig, fit

CONFIG = ViTConfig(image_size=16, patch_size=4, num_classes=4, dim=32, depth=2, heads=2, mlp_dim=64)
TRAIN = TrainConfig(epochs=3, lr=1e-3, warmup_epochs=0.5, amp=False)


def data(augment: bool) -> TensorLoader:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (128, 3, 16, 16), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 4, (128,), generator=g)
    return TensorLoader(images, labels, 32, train=True, augment=augment, device="cpu")


def stop_before(loader: TensorLoader, epoch: int) -> None:
    """Make every process exit as `epoch` (1-based) starts: a kill between two epochs."""
    original = loader.set_epoch

    def set_epoch(e):  # fit calls set_epoch(epoch - 1) as each epoch starts
        if e + 1 == epoch:
            raise SystemExit(3)
        original(e)
    loader.set_epoch = set_epoch


def train(out: Path, augment: bool = False, stop_at: int | None = None) -> dict:
    loader = data(augment)
    if stop_at is not None:
        stop_before(loader, stop_at)
    torch.manual_seed(0)
    model = ViT(CONFIG)
    history = fit(model, loader, None, TRAIN, out_dir=out, resume=True, device="cpu",
                  progress=False, verbose=False)
    return {"model": model.state_dict(), "history": history}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--stop-at", type=int, default=None, help="exit as this epoch starts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    init_from_env("cpu")
    result = train(args.out, stop_at=args.stop_at)
    if is_main():
        torch.save(result, args.out / "result.pt")
