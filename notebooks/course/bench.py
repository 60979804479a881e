"""Training-step speed of vit_core's ViT against timm's and torchvision's, same config.

    python -m course.bench [--device cpu|cuda] [--batch-size 128] [--steps 2]
                           [--rounds 30] [--compile] [--explore] [--threads N]

What it measures: images per second of full training steps (forward, cross-entropy,
backward, AdamW step with default options) for the three implementations built to one
config (default: the seed CIFAR-10 model, 32 px, patch 4, dim 48, depth 4, heads 4, MLP
192, 10 classes) in fp32 on the CPU and bf16 autocast on CUDA. All three run in this one
process; after a warm-up, `--rounds` rounds each time `--steps` steps of every model, in an
order that rotates each round. Short rounds matter on a shared machine: with 10 steps per
round, load swings alone once made vit_core look 1.5x faster than timm; with 1-2 steps per
round the two came out equal, as they should (same kernels, measured).
The table shows the median img/s (and the min-max over rounds) and each model's ratio to
the faster of the two peers. The row "vit_core" turns on `ViTConfig.cls_only_last_block`, as
the training recipes do: the last block updates only the CLS token, the one row the head
reads (same logits and gradients, 19% fewer multiply-adds at the seed config). The row
"vit_core, full last block" is the default, textbook forward, to show where the difference
comes from. Before timing, the peers' weights are copied into vit_core (vit_core.loaders)
and the logits compared, so all three provably compute the same function.

`--explore` also times variants of vit_core alone (plain reshape/permute instead of einops,
the manual attention path instead of fused SDPA, channels-last input, foreach/fused AdamW),
to see what matters. On CUDA every run also times ViT-B/16 at 224 px (all blocks trained,
then only the last 3) fed by the on-GPU data path (uint8 32 px batch -> crop, flip, resize,
normalise), with peak memory. Takes under a minute on a free 2-core CPU (about 2 with
--explore); --compile adds roughly a minute of compilation per model on the CPU (part of
the warm-up, not of the timing).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import types
from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from vit_core import ViT, ViTConfig, from_timm, from_torchvision, max_diff
from vit_core.data import TensorLoader
from vit_core.train import freeze_all_but_last

from . import env


def build_peers(config: ViTConfig) -> dict[str, nn.Module]:
    """timm's and torchvision's VisionTransformer built to `config` (timm imported lazily)."""
    import timm.models.vision_transformer as timm_vit
    from torchvision.models.vision_transformer import VisionTransformer as TorchvisionViT

    timm_model = timm_vit.VisionTransformer(
        img_size=config.image_size, patch_size=config.patch_size, num_classes=config.num_classes,
        embed_dim=config.dim, depth=config.depth, num_heads=config.heads,
        mlp_ratio=config.mlp_dim / config.dim, qkv_bias=config.qkv_bias)
    tv_model = TorchvisionViT(
        image_size=config.image_size, patch_size=config.patch_size, num_layers=config.depth,
        num_heads=config.heads, hidden_dim=config.dim, mlp_dim=config.mlp_dim, num_classes=config.num_classes)
    return {"timm": timm_model, "torchvision": tv_model}


@torch.no_grad()
def check_same_function(peers: dict[str, nn.Module], config: ViTConfig) -> dict[str, float]:
    """Largest logit difference between each peer and vit_core holding the peer's weights."""
    x = torch.randn(4, config.in_channels, config.image_size, config.image_size)
    copies = {"timm": from_timm, "torchvision": from_torchvision}
    diffs = {}
    for name, peer in peers.items():
        peer = copy.deepcopy(peer).eval()
        for p in peer.parameters():  # torchvision's head starts at zero: equal logits would prove nothing
            p.normal_(0, 0.1)
        diffs[name] = max_diff(copies[name](peer, heads=config.heads).eval()(x), peer(x))
    return diffs


def reshape_attention_forward(self, x, cls_only=False):
    """vit_core's Attention.forward with reshape/permute in place of einops (the proposal)."""
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim)  # (B, N, 3, heads, head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
    if cls_only:
        q = q[:, :, :1]  # (B, heads, 1, head_dim)
    p = self.attn_drop.p if self.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, heads, Nq, head_dim)
    out = out.transpose(1, 2).reshape(B, q.shape[2], C)  # (B, Nq, dim)
    return self.proj_drop(self.proj(out))


def reshape_patch_forward(self, images):
    return self.proj(images).flatten(2).transpose(1, 2)  # (B, num_patches, dim)


def vit_core_variant(config: ViTConfig, variant: str) -> nn.Module:
    """A fresh vit_core ViT with some forwards swapped on its instances (model.py untouched)."""
    model = ViT(config)
    for module in model.modules():
        if variant == "reshape" and type(module).__name__ == "Attention":
            module.forward = types.MethodType(reshape_attention_forward, module)
        if variant == "reshape" and type(module).__name__ == "PatchEmbedding":
            module.forward = types.MethodType(reshape_patch_forward, module)
        if variant == "manual attention" and type(module).__name__ == "Attention":
            module.keep_weights = True  # the explicit softmax(q k^T / sqrt(d)) v path, for training too
    return model


class Runner:
    """One model + optimizer + fixed batch; `run(n)` does n training steps, returns seconds."""

    def __init__(self, model, batch, device, optimizer_options=None, compile=False,
                 channels_last=False, make_input=None):
        self.model = model.to(device).train()
        self.step_model = torch.compile(model) if compile else self.model
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=1e-4, **(optimizer_options or {}))
        self.x, self.y = batch
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.device, self.make_input = device, make_input

    def run(self, steps: int) -> float:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            x = self.make_input(self.x) if self.make_input else self.x
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                loss = F.cross_entropy(self.step_model(x).float(), self.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        sync()
        return time.perf_counter() - start


def interleaved(runners: dict[str, Runner], batch_size: int, steps: int, rounds: int, warmup: int = 3):
    """{name: [img/s per round]}: every round times every runner, in a rotating order."""
    for runner in runners.values():
        runner.run(warmup)
    names, rates = list(runners), {name: [] for name in runners}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            rates[name].append(batch_size * steps / runners[name].run(steps))
    return rates


def print_table(title: str, rates: dict[str, list[float]], reference: list[str], extra: dict | None = None):
    """Median img/s per model and its ratio to the fastest of `reference`."""
    medians = {name: statistics.median(r) for name, r in rates.items()}
    best = max(medians[name] for name in reference)
    print(f"\n{title}")
    print(f"{'model':<28} {'img/s (median)':>15} {'min-max':>17} {'vs faster peer':>15}"
          + (f" {'peak memory':>12}" if extra else ""))
    for name, r in rates.items():
        memory = f" {extra[name]:>9.2f} GiB" if extra else ""
        print(f"{name:<28} {medians[name]:>15,.0f} {min(r):>8,.0f}-{max(r):<8,.0f} "
              f"{medians[name] / best:>14.2f}x{memory}")
    return medians


def seed_benchmark(args, device, config: ViTConfig):
    """vit_core (shortcut on, and the textbook forward) against timm and torchvision at `config`."""
    torch.manual_seed(0)
    peers = build_peers(config)
    diffs = check_same_function(peers, config)
    print("same function: max |logit difference| with shared weights: "
          + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    batch = (torch.randn(args.batch_size, config.in_channels, config.image_size, config.image_size, device=device),
             torch.randint(0, config.num_classes, (args.batch_size,), device=device))
    fast = replace(config, cls_only_last_block=True)  # the shortcut the training recipes turn on
    models = {"vit_core": ViT(fast), "vit_core, full last block": ViT(replace(fast, cls_only_last_block=False)),
              **peers}
    runners = {name: Runner(m, batch, device, compile=args.compile) for name, m in models.items()}
    rates = interleaved(runners, args.batch_size, args.steps, args.rounds)
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    print("vit_core runs with cls_only_last_block=True (the last block updates only the CLS token)")
    print_table(f"ViT {config.image_size} px, patch {config.patch_size}, dim {config.dim}, depth {config.depth}: "
                f"training steps, batch {args.batch_size}, {precision}, "
                f"{env.hardware_name(device)}{', torch.compile' if args.compile else ''}",
                rates, reference=["timm", "torchvision"])
    if args.explore:
        explore(args, device, fast, batch)


def explore(args, device, config, batch):
    """vit_core variants against plain vit_core: which changes matter, measured alike."""
    variants = {
        "vit_core (as is)": (vit_core_variant(config, "as is"), {}, False),
        "vit_core reshape, no einops": (vit_core_variant(config, "reshape"), {}, False),
        "vit_core manual attention": (vit_core_variant(config, "manual attention"), {}, False),
        "vit_core channels_last in": (vit_core_variant(config, "as is"), {}, True),
        "vit_core AdamW foreach": (vit_core_variant(config, "as is"), {"foreach": True}, False),
        "vit_core AdamW fused": (vit_core_variant(config, "as is"), {"fused": True}, False),
        "timm AdamW fused": (build_peers(config)["timm"], {"fused": True}, False),
    }
    runners = {name: Runner(m, batch, device, optimizer_options=opt, channels_last=cl, compile=args.compile)
               for name, (m, opt, cl) in variants.items()}
    rates = interleaved(runners, args.batch_size, args.steps, args.rounds)
    print_table("variants (ratio vs vit_core as is)", rates, reference=["vit_core (as is)"])


def vit_b16_benchmark(args, device, config=None, batch_size=64, steps=5, rounds=3):
    """ViT-B/16 at 224 px (on CUDA), data path included, all blocks vs only the last 3 trained.

    Models run one after another (not interleaved) so that each one's peak memory is its own.
    """
    config = config or ViTConfig.vit_b_16(num_classes=10, cls_only_last_block=True)  # vit_core with the shortcut
    cuda = device.type == "cuda"
    images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (batch_size,), device=device)
    loader = TensorLoader(images, labels, batch_size, train=True, image_size=config.image_size, device=device)
    results, memory = {}, {}
    for trained in ("all blocks", "last 3 blocks"):
        for name in ("vit_core", "timm", "torchvision"):
            model = ViT(config) if name == "vit_core" else build_peers(config)[name]
            if trained == "last 3 blocks":
                freeze_last_3(model, name)
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            runner = Runner(model, (images, labels), device, compile=args.compile, make_input=loader.transform)
            key = f"{name}, {trained}"
            results[key] = interleaved({key: runner}, batch_size, steps, rounds, warmup=2)[key]
            memory[key] = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
            del runner, model
    print_table(f"ViT-B/16-shaped ({config.image_size} px), batch {batch_size}, "
                f"{'bf16 autocast' if cuda else 'fp32'}, data path (uint8 32 px -> crop, flip, resize, "
                f"normalise) on {env.hardware_name(device)}", results,
                reference=["timm, all blocks", "torchvision, all blocks"], extra=memory)


def freeze_last_3(model: nn.Module, name: str) -> None:
    """Train only the last 3 blocks, the final norm and the head, in each library's own names."""
    if name == "vit_core":
        freeze_all_but_last(model, 3)
        return
    model.requires_grad_(False)
    blocks = list(model.blocks) if name == "timm" else list(model.encoder.layers)
    head = [model.norm, model.head] if name == "timm" else [model.encoder.ln, model.heads]
    for module in [*blocks[-3:], *head]:
        module.requires_grad_(True)


def main(argv=None, config: ViTConfig | None = None):
    """The command line; `config` (default: the seed CIFAR-10 model) lets a test run it small."""
    parser = argparse.ArgumentParser(prog="python -m course.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=str(env.get_device()), help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=30, help="alternating timed rounds; the median is reported")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model alike")
    parser.add_argument("--explore", action="store_true", help="also time vit_core variants")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine, fewer threads than cores is steadier
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {env.hardware_name(device)}")
    seed_benchmark(args, device, config or ViTConfig.cifar10_seed())
    if device.type == "cuda":
        vit_b16_benchmark(args, device)


if __name__ == "__main__":
    main()
