"""Training-step speed of vit_core's ViT against timm's and torchvision's, same config.

    python -m tools.bench [--device cpu|cuda] [--models tiny|small-data] [--batch-size N]
                           [--steps 2] [--rounds 30] [--compile] [--explore] [--threads N]

What it measures: images per second of full training steps (forward, cross-entropy,
backward, AdamW step with default options) for the three implementations built to one
config (default: the tiny CIFAR-10 ViT, 32 px, patch 4, dim 48, depth 4, heads 4, MLP
192, 10 classes) in fp32 on the CPU and bf16 autocast on CUDA. All three run in this one
process; `--rounds` rounds each time `--steps` steps of every model (torch.utils.benchmark.Timer,
which warms up first), in an order that rotates each round; the rounds of a model are merged
into one Measurement and shown by torch.utils.benchmark.Compare. Short rounds matter on a shared machine: with 10 steps per
round, load swings alone once made vit_core look 1.5x faster than timm; with 1-2 steps per
round the two came out equal, as they should (same kernels, measured).
Compare's table shows the median time of a step (and its spread); below it, the median img/s
and each model's ratio to the faster of the two peers. The row "vit_core" turns on `ViTConfig.cls_only_last_block`, as
the training recipes do: the last block updates only the CLS token, the one row the head
reads (same logits and gradients, 19% fewer multiply-adds at the tiny config). The row
"vit_core, full last block" is the default, textbook forward, to show where the difference
comes from. Before timing, the peers' weights are copied into vit_core (vit_core.loaders)
and the logits compared, so all three provably compute the same function.

`--explore` also times variants of vit_core alone (plain reshape/permute instead of einops,
the manual attention path instead of fused SDPA, channels-last input, foreach/fused AdamW),
to see what matters. On CUDA every run also times ViT-B/16 at 224 px (all blocks trained,
then only the last 3) fed by the on-GPU data path (uint8 32 px batch -> crop, flip, resize,
normalise), with peak memory (tools.gpu_check times ViT-B/16 with the same function). Takes under a minute on a free 2-core CPU (about 2 with
--explore); --compile adds roughly a minute of compilation per model on the CPU (part of
the warm-up, not of the timing).

`--models small-data` times, instead, the small-data ladder's final recipe (`ladder-final`:
conv tokenizer, sequence pooling, no CLS token) against the nearest equivalents timm and
torchvision can build at its sizes, and the ladder's ResNet (`ladder-cnn`), at batch 256 by
default: training steps, then inference (eval mode, torch.inference_mode, forward only), with
parameter counts checked first. Nearest, not equal: timm gets vit_core's conv tokenizer
through its `embed_layer` argument (same tokens) but has no sequence pooling, so it averages
the tokens (`global_pool='avg'`); torchvision's tokenizer is its own `conv_stem_configs`
(stride-2 3x3 conv + BatchNorm + ReLU layers, then a 1x1 conv; Xiao et al. 2021), and it
keeps its CLS token. So these rows compare speed at equal size, not the same function, nor the
same work: the parameter counts must agree within SIZE_RATIO (checked, printed), and the table
prints each model's forward multiply-adds too. torchvision's stride-2 convolutions compute
16x16 and 8x8 outputs where vit_core's compute 32x32 and 16x16 ones, then max-pool (10.6 M
against 15.3 M multiply-adds an image at the recipe's sizes), and in inference its
nn.MultiheadAttention takes torch's fused fast path.
"""
from __future__ import annotations

import argparse
import copy
import math
import types
from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils import benchmark

from vit_core import ViT, ViTConfig, from_timm, from_torchvision
from vit_core.data import TensorLoader
from vit_core.layers import ConvStem
from vit_core.train import AMP_DTYPES, freeze_all_but_last

from course import env
from course.recipes import RECIPES, make_model


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
        diffs[name] = (copies[name](peer, heads=config.heads).eval()(x) - peer(x)).abs().max().item()
    return diffs


def _reshape_attention(self, x, cls_only):
    """vit_core's fused Attention with reshape/permute in place of einops (the proposal)."""
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim)  # (B, N, 3, heads, head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
    if cls_only:
        q = q[:, :, :1]  # (B, heads, 1, head_dim)
    p = self.attn_drop.p if self.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, heads, Nq, head_dim)
    out = out.transpose(1, 2).reshape(B, q.shape[2], C)  # (B, Nq, dim)
    return self.proj_drop(self.proj(out))


def reshape_attention_forward(self, x):
    """Attention.forward, reshape version: (B, N, dim) -> (B, N, dim)."""
    return _reshape_attention(self, x, cls_only=False)


def reshape_attention_forward_cls(self, x):
    """Attention.forward_cls, reshape version: (B, N, dim) -> (B, 1, dim)."""
    return _reshape_attention(self, x, cls_only=True)


def manual_attention_forward_cls(self, x):
    """Attention.forward_cls on the explicit path: only the CLS query, softmax(q k^T / sqrt(d)) v."""
    q, k, v = self._split_heads(x)  # each (B, heads, N, head_dim)
    weights = ((q[:, :, :1] @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)  # (B, heads, 1, N)
    return self._merge_heads(self.attn_drop(weights) @ v)  # (B, 1, dim)


def reshape_patch_forward(self, images):
    return self.proj(images).flatten(2).transpose(1, 2)  # (B, num_patches, dim)


def vit_core_variant(config: ViTConfig, variant: str) -> nn.Module:
    """A fresh vit_core ViT with some forwards swapped on its instances (model.py untouched)."""
    model = ViT(config)
    for module in model.modules():
        if variant == "reshape" and type(module).__name__ == "Attention":
            module.forward = types.MethodType(reshape_attention_forward, module)
            module.forward_cls = types.MethodType(reshape_attention_forward_cls, module)
        if variant == "reshape" and type(module).__name__ == "PatchEmbedding":
            module.forward = types.MethodType(reshape_patch_forward, module)
        if variant == "manual attention" and type(module).__name__ == "Attention":
            # the explicit softmax(q k^T / sqrt(d)) v path, for training too (weights dropped)
            module.forward = lambda x, m=module: m.forward_with_weights(x)[0]
            module.forward_cls = types.MethodType(manual_attention_forward_cls, module)
    return model


class Runner:
    """One model + optimizer + fixed batch; `step()` is one training step (forward, cross-entropy,
    backward, AdamW) under autocast in `dtype` ('bfloat16' | 'float16', with a gradient scaler;
    default: bfloat16 on CUDA, float32 elsewhere)."""

    def __init__(self, model, batch, device, optimizer_options=None, compile=False,
                 channels_last=False, make_input=None, dtype: str | None = None):
        self.model = model.to(device).train()
        self.step_model = torch.compile(model) if compile else self.model
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=1e-4, **(optimizer_options or {}))
        self.x, self.y = batch
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.device, self.make_input = torch.device(device), make_input
        dtype = dtype or ("bfloat16" if self.device.type == "cuda" else None)
        self.dtype = AMP_DTYPES[dtype] if dtype else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def step(self) -> None:
        x = self.make_input(self.x) if self.make_input else self.x
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            loss = F.cross_entropy(self.step_model(x).float(), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def timer(self, label: str, name: str, description: str = "") -> benchmark.Timer:
        """A torch.utils.benchmark.Timer of one step (it synchronises CUDA around the timing)."""
        return benchmark.Timer("runner.step()", globals={"runner": self}, label=label, sub_label=name,
                               description=description, num_threads=torch.get_num_threads())


def interleaved(runners: dict[str, Runner], steps: int, rounds: int, label: str = "training step",
                description: str = "") -> dict[str, benchmark.Measurement]:
    """{name: Measurement of `rounds` rounds}: every round times `steps` steps of every runner
    (Timer.timeit warms each up first), in a rotating order, so that a busy machine slows all alike."""
    timers = {name: runner.timer(label, name, description) for name, runner in runners.items()}
    names, rounds_of = list(runners), {name: [] for name in runners}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            rounds_of[name].append(timers[name].timeit(steps))
    return {name: benchmark.Measurement.merge(ms)[0] for name, ms in rounds_of.items()}


def images_per_second(measurement: benchmark.Measurement, batch_size: int) -> list[float]:
    """img/s of each round of a Measurement (its times are seconds per step)."""
    return [batch_size / t for t in measurement.times]


def show(measurements: dict[str, benchmark.Measurement], batch_size: int, reference: list[str],
         extra: dict[str, str] | None = None,
         reference_name: str | None = None) -> dict[str, float]:
    """torch.utils.benchmark.Compare's table of the step times, then each model's median img/s and
    its ratio to the fastest of `reference` (called `reference_name`, default their names joined
    by '/'); returns {name: median img/s}."""
    compare = benchmark.Compare(list(measurements.values()))
    compare.trim_significant_figures()
    compare.print()
    medians = {name: batch_size / m.median for name, m in measurements.items()}
    best = max(medians[name] for name in reference)
    width, reference_name = max(28, *map(len, measurements)), reference_name or "/".join(reference)
    for name, m in measurements.items():
        rates = images_per_second(m, batch_size)
        print(f"{name:<{width}} {medians[name]:>9,.0f} img/s "
              f"(median; {min(rates):,.0f}-{max(rates):,.0f})  "
              f"{medians[name] / best:>5.2f}x vs {reference_name}"
              + (f"  {extra[name]}" if extra else ""))
    return medians


def tiny_benchmark(args, device, config: ViTConfig):
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
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    print("vit_core runs with cls_only_last_block=True (the last block updates only the CLS token)")
    label = (f"ViT {config.image_size} px, patch {config.patch_size}, dim {config.dim}, depth {config.depth}: "
             f"training steps, batch {args.batch_size}, {precision}, "
             f"{env.hardware(device)}{', torch.compile' if args.compile else ''}")
    show(interleaved(runners, args.steps, args.rounds, label), args.batch_size, reference=["timm", "torchvision"])
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
    measured = interleaved(runners, args.steps, args.rounds, "variants (ratio vs vit_core as is)")
    show(measured, args.batch_size, reference=["vit_core (as is)"])


def vit_b16(device, config: ViTConfig | None = None, batch_size: int = 64, steps: int = 5, rounds: int = 3,
            models=("vit_core", "timm", "torchvision"), trained=("all blocks", "last 3 blocks"),
            dtypes=("bfloat16",), compile: bool = False, images: torch.Tensor | None = None) -> list[dict]:
    """The one ViT-B/16 timing (224 px, or `config`) fed by the data path (uint8 32 px batch ->
    crop, flip, resize, normalise on the device): a row per model, trained blocks and autocast
    dtype, with img/s and, on CUDA, peak memory. Runs one after another (not interleaved) so
    that each one's peak memory is its own. `images`: uint8 (N, 3, 32, 32), else random."""
    config = config or ViTConfig.vit_b_16(num_classes=10, cls_only_last_block=True)  # vit_core with the shortcut
    device = torch.device(device)
    cuda = device.type == "cuda"
    if images is None:
        images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8)
    images = images[:batch_size].to(device)
    labels = torch.randint(0, config.num_classes, (len(images),), device=device)
    loader = TensorLoader(images, labels, batch_size, train=True, image_size=config.image_size, device=device)
    label = (f"ViT-B/16-shaped ({config.image_size} px, patch {config.patch_size}, dim {config.dim}, depth "
             f"{config.depth}), batch {batch_size}, data path (uint8 32 px -> crop, flip, resize, normalise) "
             f"on {env.hardware(device)}")
    rows, measured = [], {}
    for dtype in dtypes:
        for blocks in trained:
            for name in models:
                model = ViT(config) if name == "vit_core" else build_peers(config)[name]
                if blocks == "last 3 blocks":
                    freeze_last_3(model, name)
                if cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                runner = Runner(model, (images, labels), device, compile=compile, make_input=loader.transform,
                                dtype=dtype)
                key = f"{name}, {blocks}, {dtype}"
                measured[key] = interleaved({key: runner}, steps, rounds, label, dtype)[key]
                rows.append({"model": f"{name}, {blocks}", "dtype": dtype, "batch": batch_size, "steps": steps,
                             "img_per_s": batch_size / measured[key].median,
                             "peak_allocated_gb": torch.cuda.max_memory_allocated(device) / 1e9 if cuda else None,
                             "peak_reserved_gb": torch.cuda.max_memory_reserved(device) / 1e9 if cuda else None})
                del runner, model
    peaks = {key: f"peak {row['peak_allocated_gb']:.2f} GB" if cuda else "" for key, row in zip(measured, rows)}
    firsts = [k for k in measured if ", all blocks," in k and not k.startswith("vit_core")] or list(measured)[:1]
    show(measured, batch_size, reference=firsts, extra=peaks)
    return rows


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


# ---------------------------------------------------------------- the small-data ladder's models

VIT_ROW = "vit_core ladder-final (conv stem, seq pool)"
TIMM_ROW = "timm (vit_core conv stem, avg pool)"
TV_ROW = "torchvision (conv_stem_configs, CLS)"
CNN_ROW = "ResNet ladder-cnn"
# the largest parameter-count ratio to vit_core's, either way, that still counts as the same size
SIZE_RATIO = {TIMM_ROW: 1.05, TV_ROW: 1.05, CNN_ROW: 1.5}


class TimmConvTokenizer(nn.Module):
    """vit_core's ConvStem behind timm's `embed_layer` interface: timm's VisionTransformer builds
    it with its patch-embedding arguments (bias, padding and device options are ignored: the
    stem has no bias) and reads `num_patches`. Same tokens as vit_core: (B, num_patches, dim)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int, **timm_args):
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        self.grid_size = (img_size // patch_size,) * 2
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.stem = ConvStem(in_chans, embed_dim, patch_size)
        self.stem.reset_parameters()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.stem(images)  # (B, num_patches, embed_dim)


def small_data_configs():
    """The configs of the ladder's final ViT and its ResNet, read from the recipe book."""
    return RECIPES["ladder-final"].model, RECIPES["ladder-cnn"].model


def timm_small_data(config: ViTConfig) -> nn.Module:
    """timm's VisionTransformer at `config`'s sizes with vit_core's conv tokenizer, no CLS
    token and mean pooling of the normed tokens (timm has no sequence pooling)."""
    import timm.models.vision_transformer as timm_vit
    return timm_vit.VisionTransformer(
        img_size=config.image_size, patch_size=config.patch_size, in_chans=config.in_channels,
        num_classes=config.num_classes, embed_dim=config.dim, depth=config.depth,
        num_heads=config.heads, mlp_ratio=config.mlp_dim / config.dim, qkv_bias=config.qkv_bias,
        class_token=False, global_pool="avg", fc_norm=False, embed_layer=TimmConvTokenizer)


def torchvision_small_data(config: ViTConfig) -> nn.Module:
    """torchvision's VisionTransformer at `config`'s sizes with its early-convolution stem:
    log2(patch) layers of stride-2 3x3 conv + BatchNorm + ReLU at width `dim`, then a 1x1 conv."""
    from torchvision.models.vision_transformer import ConvStemConfig, VisionTransformer
    if config.in_channels != 3:  # torchvision's conv stem is built for 3 channels
        raise ValueError(f"torchvision's conv stem takes 3 channels, got {config.in_channels}")
    layers = [ConvStemConfig(out_channels=config.dim, kernel_size=3, stride=2)]
    return VisionTransformer(
        image_size=config.image_size, patch_size=config.patch_size, num_layers=config.depth,
        num_heads=config.heads, hidden_dim=config.dim, mlp_dim=config.mlp_dim,
        num_classes=config.num_classes,
        conv_stem_configs=layers * int(math.log2(config.patch_size)))


def build_small_data(config: ViTConfig, cnn) -> dict[str, nn.Module]:
    """{row: model}: the final recipe's ViT, timm's and torchvision's nearest equivalents at its
    sizes, and the ladder's ResNet."""
    if config.stem != "conv":
        raise ValueError(f"the small-data rows need a conv-stem ViT, got stem={config.stem!r}")
    return {VIT_ROW: ViT(config), TIMM_ROW: timm_small_data(config),
            TV_ROW: torchvision_small_data(config), CNN_ROW: make_model(cnn)}


def forward_macs(model: nn.Module, config: ViTConfig) -> int:
    """Multiply-adds of one image's forward pass (eval mode), by torch's FLOP counter. Gradients
    stay on: without them nn.MultiheadAttention (torchvision) takes a fused fast path that the
    counter cannot see; attention runs on its math path, whose matmuls the counter sees."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.randn(1, config.in_channels, config.image_size, config.image_size)
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model.eval()(x)
    return counter.get_total_flops() // 2


def check_sizes(models: dict[str, nn.Module], config: ViTConfig) -> dict[str, int]:
    """Print every row's parameter count, its ratio to vit_core's and its forward multiply-adds
    per image; fail where a ratio (either way) exceeds SIZE_RATIO. Returns {row: parameters}."""
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    width = max(map(len, models))
    print(f"{'model':<{width}} {'parameters':>10} {'vs vit_core':>11}  {'allowed':<11}  "
          "forward multiply-adds / image")
    for name, count in counts.items():
        ratio, limit = count / counts[VIT_ROW], SIZE_RATIO.get(name, 1.0)
        allowed = f"{1 / limit:.2f}-{limit:.2f}x" if name in SIZE_RATIO else "(reference)"
        macs = forward_macs(models[name], config) / 1e6
        print(f"{name:<{width}} {count:>10,} {ratio:>10.3f}x  {allowed:<11}  {macs:.1f} M")
        if not 1 / limit <= ratio <= limit:
            raise AssertionError(f"{name}: {count:,} parameters, {ratio:.2f}x vit_core's")
    return counts


@torch.no_grad()
def check_shapes(models: dict[str, nn.Module], config: ViTConfig, batch: int = 2) -> dict:
    """Print and check the token grid each ViT makes and every model's logits shape: the ViTs
    all make (grid * grid) tokens of width dim, and all give (batch, num_classes)."""
    x = torch.randn(batch, config.in_channels, config.image_size, config.image_size)
    grid = config.image_size // config.patch_size
    tokens = {VIT_ROW: tuple(models[VIT_ROW].patch_embed(x).shape),
              TIMM_ROW: tuple(models[TIMM_ROW].patch_embed(x).shape),
              TV_ROW: tuple(models[TV_ROW].conv_proj(x).flatten(2).transpose(1, 2).shape)}
    logits = {name: tuple(m.eval()(x).shape) for name, m in models.items()}
    want = (batch, grid * grid, config.dim)
    for name, shape in tokens.items():
        if shape != want:
            raise AssertionError(f"{name} makes tokens {shape}, not {want}")
    if set(logits.values()) != {(batch, config.num_classes)}:
        raise AssertionError(f"logits shapes differ from {(batch, config.num_classes)}: {logits}")
    print("tokens: " + ", ".join(f"{k.split()[0]} {v}" for k, v in tokens.items())
          + " (torchvision then adds its CLS token); logits: all " + str(logits[VIT_ROW]))
    return {"tokens": tokens, "logits": logits}


class InferenceRunner:
    """One model in eval mode and a fixed batch; `step()` is one forward pass under
    torch.inference_mode and, on CUDA, bf16 autocast (fp32 elsewhere), as Runner trains."""

    def __init__(self, model, images, device, compile=False):
        self.model = model.to(device).eval()
        self.step_model = torch.compile(self.model) if compile else self.model
        self.x, self.device = images, torch.device(device)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32

    def step(self) -> None:
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, self.dtype, enabled=cuda):
            self.step_model(self.x)

    timer = Runner.timer


def small_data_benchmark(args, device, configs=None) -> dict:
    """The final recipe's ViT, its timm and torchvision equivalents and the ladder's ResNet:
    sizes and shapes checked, then training steps and inference, each interleaved."""
    config, cnn = configs or small_data_configs()
    torch.manual_seed(0)
    models = build_small_data(config, cnn)
    print(f"vit_core: stem={config.stem}, pool={config.pool}, pos={config.pos}, "
          f"cls_only_last_block={config.cls_only_last_block}; timm has no sequence pooling")
    params, shapes = check_sizes(models, config), check_shapes(models, config)
    b, size = args.batch_size, config.image_size
    batch = (torch.randn(b, config.in_channels, size, size, device=device),
             torch.randint(0, config.num_classes, (b,), device=device))
    where = (f"{size} px, batch {b}, {'bf16 autocast' if device.type == 'cuda' else 'fp32'}, "
             f"{env.hardware(device)}{', torch.compile' if args.compile else ''}")
    peers = [TIMM_ROW, TV_ROW]
    train = {n: Runner(m, batch, device, compile=args.compile) for n, m in models.items()}
    trained = show(interleaved(train, args.steps, args.rounds, f"training steps, {where}"), b,
                   peers, reference_name="faster peer")
    infer = {n: InferenceRunner(copy.deepcopy(m), batch[0], device, args.compile)
             for n, m in models.items()}
    inferred = show(interleaved(infer, args.steps, args.rounds, f"inference, {where}"), b, peers,
                    reference_name="faster peer")
    return {"params": params, "shapes": shapes, "train_img_per_s": trained,
            "inference_img_per_s": inferred}


def main(argv=None, config: ViTConfig | None = None, small_data=None):
    """The command line; `config` (default: the tiny CIFAR-10 ViT) and `small_data` (default:
    small_data_configs()) let a test run it small. Returns small_data_benchmark's dict, if run."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=str(env.get_device()), help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--models", choices=["tiny", "small-data"], default="tiny",
                        help="tiny: vit_core against timm and torchvision, one config (default); "
                             "small-data: ladder-final, its nearest timm and torchvision "
                             "equivalents and the ladder's ResNet")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default 128 (tiny), 256 (small-data)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=30, help="alternating timed rounds; the median is reported")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model alike")
    parser.add_argument("--explore", action="store_true",
                        help="also time vit_core variants (tiny only)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.explore and args.models != "tiny":
        parser.error("--explore times variants of the tiny ViT: use it with --models tiny")
    args.batch_size = args.batch_size or (128 if args.models == "tiny" else 256)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine, fewer threads than cores is steadier
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {env.hardware(device)}")
    if args.models == "small-data":
        return small_data_benchmark(args, device, small_data)
    tiny_benchmark(args, device, config or ViTConfig.cifar10_tiny())
    if device.type == "cuda":
        vit_b16(device, compile=args.compile)
    return None


if __name__ == "__main__":
    main()
