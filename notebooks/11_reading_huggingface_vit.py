# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/11_reading_huggingface_vit.ipynb)
#
# # 11 · Reading HuggingFace's ViT: `transformers`' `modeling_vit.py`
#
# Most readers meet a pretrained ViT on the HuggingFace Hub: `google/vit-base-patch16-224` and
# its many fine-tunes are loaded with `ViTForImageClassification.from_pretrained(...)`. This
# notebook reads the file behind that call, `transformers/models/vit/modeling_vit.py`, class by
# class **as the installed version of `transformers` defines it** (the classes are listed by
# code, not from memory), runs each one on a real CIFAR-10 batch with its shapes printed, and
# maps it onto `vit_core`. No code is copied from it: we explain, inspect and compare.
#
# **What you will learn**
# - what each class of the installed `modeling_vit.py` holds and computes, and which piece of
#   `vit_core` it corresponds to, with every piece's output checked equal;
# - how the file changed between transformers 4 and 5 (classes merged, tensors renamed), and
#   why checkpoints on the Hub still carry the 4.x names;
# - which names torchvision and timm give to the same parts, checked against their models;
# - the differences that bite when you move weights: LayerNorm $\epsilon = 10^{-12}$, the pooler,
#   `interpolate_pos_encoding`, the attention back-ends;
# - how `vit_core.from_huggingface` turns a HuggingFace model or checkpoint into a `vit_core.ViT`
#   with equal logits and attention weights.
#
# **Notation** (the series' table, notebook 01): image side $H = W$, patch side $P$, grid side
# $G = H/P$, $N = G^2$ patches, $T = N + 1$ tokens, width $D$, $h$ heads of width $d_h = D/h$,
# MLP width $D_\text{mlp}$, depth $L$, batch $B$. For `google/vit-base-patch16-224`: $H = 224$,
# $P = 16$, $G = 14$, $N = 196$, $T = 197$, $D = 768$, $h = 12$, $d_h = 64$, $D_\text{mlp} = 3072$,
# $L = 12$ (the config table below prints them from `transformers`).

# %%
import subprocess, sys  # on Colab, install this repository first (an editable clone; locally `pip install -r requirements.txt` did it)
if "google.colab" in sys.modules: subprocess.run("pip install -q timm -e git+https://github.com/vit-notebooks/vit-notebooks#egg=vit-notebooks", shell=True, check=True); import site; site.main()
from course import env, setup
here = setup()  # prints one line: profile, device, data folder

# %%
from pathlib import Path
import inspect
import json
import tempfile
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file
from transformers.activations import ACT2FN
from transformers.models.vit import modeling_vit
from transformers.utils.logging import disable_progress_bar

import vit_core
from vit_core import StateDictMismatchError, ViT, ViTConfig, from_huggingface
from course import max_diff
from vit_core.data import CIFAR10_CLASSES, load_tensors, source_name, subset
from course import pretrained

torch.manual_seed(0)
disable_progress_bar()  # no "Writing model shards" bars in the stored outputs
DATA, DOWNLOAD = here.data, here.downloads  # what setup() chose above
BATCH = env.pick(full=8, smoke=4)       # CIFAR-10 test images pushed through ViT-B/16 at 224 px
HUB_ID = "google/vit-base-patch16-224"  # the checkpoint this notebook reads (full profile, online)
VERSION = transformers.__version__
SOURCE = (f"https://github.com/huggingface/transformers/blob/v{VERSION}/"
          "src/transformers/models/vit/modeling_vit.py")
print(f"transformers {VERSION}; reading {inspect.getsourcefile(modeling_vit)}")
print(f"the same file online: {SOURCE}")


# %% [markdown]
# ## What the installed file defines
#
# `inspect` lists every class and function that `modeling_vit.py` itself defines (imports from
# elsewhere are left out), with its lines in the installed file and its base classes. This is
# the table of contents for the rest of the notebook.

# %%
def defined_here(module, kind):
    """(name, object) for every class or function whose code lives in `module` itself."""
    return [(n, o) for n, o in inspect.getmembers(module, kind) if o.__module__ == module.__name__]


def line_range(obj) -> str:
    lines, start = inspect.getsourcelines(obj)
    return f"L{start}-L{start + len(lines) - 1}"


members = sorted(defined_here(modeling_vit, inspect.isclass) + defined_here(modeling_vit, inspect.isfunction),
                 key=lambda item: inspect.getsourcelines(item[1])[1])  # in file order
print(f"{'defined in modeling_vit.py':<28}{'lines':<12}{'kind / bases'}")
for name, obj in members:
    kind = ", ".join(b.__name__ for b in obj.__bases__) if inspect.isclass(obj) else "function"
    print(f"{name:<28}{line_range(obj):<12}{kind}")
CLASSES = {name for name, _ in defined_here(modeling_vit, inspect.isclass)}

# %% [markdown]
# Tutorials written for transformers 4.x name more classes than that. The cell below asks the
# installed module for each of the 4.x names; transformers 5 folded several of them together.

# %%
V4_CLASSES = {  # 4.x class -> what holds its job in transformers 5 (read from the installed file)
    "ViTEmbeddings": "ViTEmbeddings", "ViTPatchEmbeddings": "ViTPatchEmbeddings",
    "ViTSelfAttention": "ViTAttention (q_proj, k_proj, v_proj) + eager_attention_forward",
    "ViTSelfOutput": "ViTAttention (o_proj)", "ViTAttention": "ViTAttention",
    "ViTIntermediate": "ViTMLP (fc1 + activation)", "ViTOutput": "ViTMLP (fc2); the residual is in ViTLayer",
    "ViTLayer": "ViTLayer", "ViTEncoder": "ViTModel.layers (a plain nn.ModuleList)",
    "ViTPooler": "ViTPooler", "ViTModel": "ViTModel",
    "ViTForImageClassification": "ViTForImageClassification",
}
print(f"{'4.x class':<28}{'in ' + VERSION + '?':<14}where its job is now")
for name, now in V4_CLASSES.items():
    print(f"{name:<28}{'yes' if hasattr(modeling_vit, name) else 'no':<14}{now}")
missing_now = [n for n in V4_CLASSES if not hasattr(modeling_vit, n)]
print(f"\n{len(missing_now)} of the {len(V4_CLASSES)} 4.x classes are gone here: "
      f"{', '.join(missing_now) or 'none'}")

# %% [markdown]
# **What this shows.** The installed version no longer defines the number of 4.x class names
# printed above (`hasattr` on the module); their jobs moved into fewer classes.
#
# <details><summary>Caveats</summary>
#
# The right column, where each job went, is our reading of the installed file, not something
# `inspect` derives; the sections below check it piece by piece by running each class against
# `vit_core`.
# </details>

# %% [markdown]
# ## The configuration: `ViTConfig`
#
# A HuggingFace model is built from a config object, saved beside the weights as `config.json`.
# `transformers.ViTConfig` declares its fields as typed class attributes; their defaults *are*
# ViT-B/16 at 224 px. The table puts each field beside the `vit_core.ViTConfig` field that
# `from_huggingface` fills from it. Two defaults need a second look: the LayerNorm $\epsilon$,
# where HuggingFace differs from torchvision, timm and `vit_core` (the cell builds a tiny model of
# each and prints its default), and the activation, whose name `"gelu"` HuggingFace maps to the
# exact, erf-based GELU, the one `vit_core` uses (checked on a grid of inputs).
# The cell ends with `tiny_config`, a one-layer, 48-wide ViT at 224 px that later cells build
# when they only need the names and shapes.

# %%
HF_TO_VIT_CORE = {  # transformers.ViTConfig field -> vit_core.ViTConfig field (None: not modelled)
    "hidden_size": "dim", "num_hidden_layers": "depth", "num_attention_heads": "heads",
    "intermediate_size": "mlp_dim", "hidden_act": "(exact GELU, fixed)", "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout", "initializer_range": None,
    "layer_norm_eps": "layer_norm_eps", "image_size": "image_size", "patch_size": "patch_size",
    "num_channels": "in_channels", "qkv_bias": "qkv_bias", "encoder_stride": None,
    "pooler_output_size": None, "pooler_act": None,
}
defaults = transformers.ViTConfig()
fields = list(inspect.get_annotations(transformers.ViTConfig))
changed = set(fields) ^ set(HF_TO_VIT_CORE)
assert not changed, f"fields changed in this version: {changed}"
print(f"{'transformers.ViTConfig field':<30}{'default':<10}{'vit_core.ViTConfig'}")
for field in fields:
    print(f"{field:<30}{str(getattr(defaults, field)):<10}{HF_TO_VIT_CORE[field] or '- (not modelled)'}")
print(f"{'num_labels (from id2label)':<30}{defaults.num_labels:<10}num_classes")
probe = torch.linspace(-6, 6, 1001)
print(f"\nACT2FN['gelu'] is {type(ACT2FN['gelu']).__name__}; max |it - nn.GELU()| = "
      f"{max_diff(ACT2FN['gelu'](probe), nn.GELU()(probe)):.1e}")
assert max_diff(ACT2FN["gelu"](probe), nn.GELU()(probe)) == 0.0
import timm
import torchvision
tiny_tv = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=1,
                                               hidden_dim=8, mlp_dim=8)
tiny_timm = timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=16, embed_dim=8, depth=1,
                                                             num_heads=1)
default_eps = {"transformers.ViTConfig": defaults.layer_norm_eps, "torchvision VisionTransformer": tiny_tv.encoder.ln.eps,
               "timm VisionTransformer": tiny_timm.norm.eps, "vit_core ViTConfig": ViTConfig().layer_norm_eps}
print("default LayerNorm eps:", ", ".join(f"{k} {v:g}" for k, v in default_eps.items()))
assert default_eps["transformers.ViTConfig"] == 1e-12 and all(
    v == 1e-6 for k, v in default_eps.items() if k != "transformers.ViTConfig")


def tiny_config(**overrides):
    """ViT at 224 px with 16 px patches but one narrow layer: cheap, and the same tensor names."""
    return transformers.ViTConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=4,
                                  intermediate_size=96, **overrides)

# %% [markdown]
# ## The model: `google/vit-base-patch16-224`, or a labelled stand-in
#
# In the full profile with a network, the next cell downloads the real checkpoint (ImageNet-21k
# pre-training, ImageNet-1k fine-tuning, 224 px). Otherwise, and always in the smoke profile, a
# model built from the same config with **random weights** stands in for it: every shape, name
# and equality below is the same, but its predictions mean nothing, and every output says which
# of the two ran. We ask for `attn_implementation="eager"`, the one back-end that can return the
# attention weights (more on back-ends below).
#
# A freshly initialised HuggingFace model has every LayerNorm scale at 1 and every bias at 0, so a
# loader that swapped two biases would still give equal logits. The stand-in therefore gets a
# little noise on every tensor, which makes each such mistake visible.

# %%
def hub_cached(repo: str) -> bool:
    """Whether the Hub cache already holds this repository's weights (no download needed)."""
    from huggingface_hub import try_to_load_from_cache
    return isinstance(try_to_load_from_cache(repo, "model.safetensors"), str)


def load_real():
    return transformers.ViTForImageClassification.from_pretrained(HUB_ID, attn_implementation="eager").eval()


def make_stand_in():
    """ViT-B/16 from transformers' default config (that of HUB_ID), random weights, noise on every tensor."""
    stand_in = transformers.ViTForImageClassification(
        transformers.ViTConfig(num_labels=1000, attn_implementation="eager")).eval()
    with torch.no_grad():
        for tensor in stand_in.parameters():
            tensor.add_(0.02 * torch.randn_like(tensor))
    return stand_in


hub_url = f"https://huggingface.co/{HUB_ID}/resolve/main/config.json"
hf = pretrained.load_or_none(f"{HUB_ID} weights", load_real, hub_url, cached=hub_cached(HUB_ID),
                             fallback="a random-weight STAND-IN with the same config")
IS_REAL = hf is not None
hf = hf if IS_REAL else make_stand_in()
WEIGHTS = HUB_ID if IS_REAL else f"random-weight STAND-IN for {HUB_ID}"
print(f"model: {WEIGHTS} | {sum(p.numel() for p in hf.parameters()) / 1e6:.1f} M parameters | "
      f"attention back-end {hf.config._attn_implementation!r}")

# %% [markdown]
# ## A real batch
#
# HuggingFace pairs every checkpoint with an image processor. `ViTImageProcessor()` with its
# defaults (printed below) resizes to $224 \times 224$, rescales to $[0, 1]$ and normalises each
# channel to $[-1, 1]$, the input range of Google's ViT checkpoints. A Hub checkpoint's own
# `preprocessor_config.json` overrides these defaults; with a network,
# `ViTImageProcessor.from_pretrained(HUB_ID)` reads it. We take one CIFAR-10 test image per
# class, upscaled from 32 px.

# %%
processor = transformers.ViTImageProcessor()
images, labels = load_tensors("cifar10", "test", DATA, download=DOWNLOAD)
images, labels = subset(images, labels, per_class=1, seed=0)
images, labels = images[:BATCH], labels[:BATCH]  # (B, 3, 32, 32) uint8
DATASET = source_name("cifar10", DATA)
pixel_values = processor(images=list(images), return_tensors="pt")["pixel_values"]  # (B, 3, 224, 224)
print(f"{DATASET}: {len(labels)} test images ({', '.join(CIFAR10_CLASSES[i] for i in labels)})")
print(f"pixel_values {tuple(pixel_values.shape)}, range [{pixel_values.min():.2f}, {pixel_values.max():.2f}]")
print(f"processor: {processor.size.height}x{processor.size.width}, resample {processor.resample!r}, "
      f"rescale {processor.rescale_factor:.6f} (1/255), mean {processor.image_mean}, std {processor.image_std}")

# %% [markdown]
# ## Every class on that batch: inputs and outputs
#
# Forward hooks (with keyword arguments) record what goes into and comes out of one instance of
# each class during a single forward pass, without touching HuggingFace's code. `ViTPooler` is
# not part of `ViTForImageClassification`, so we build one from the same config and run it on
# the final hidden states; its weights are random in both profiles.

# %%
def shapes(value) -> str:
    """Tensor shapes inside a value (tensor, tuple, dict, ModelOutput), as text."""
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, dict):  # ModelOutput is a dict too
        return ", ".join(f"{k} {shapes(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, (tuple, list)):
        return ", ".join(shapes(v) for v in value if v is not None)
    return type(value).__name__


seen = {}  # class name -> (module path, positional inputs, keyword inputs, output)


def record(path):
    def hook(module, args, kwargs, output):
        tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        seen.setdefault(type(module).__name__, (path, args, tensors, output))
    return hook


handles = [m.register_forward_hook(record(p or "(the model)"), with_kwargs=True)
           for p, m in hf.named_modules() if type(m).__name__ in CLASSES]
with torch.no_grad():
    hf_out = hf(pixel_values)
    pooler = modeling_vit.ViTPooler(hf.config).eval()
    pooler.register_forward_hook(record("ViTPooler(config), on last_hidden_state"), with_kwargs=True)
    pooler(seen["ViTModel"][3].last_hidden_state)
for handle in handles:
    handle.remove()
print(f"{WEIGHTS}, {len(labels)} images of {DATASET}:")
print(f"{'class':<28}{'instance':<42}{'input shapes':<24}output shapes")
for name, (path, args, kwargs, output) in seen.items():
    inputs = ", ".join(filter(None, [shapes(args), shapes(kwargs)]))
    print(f"{name:<28}{path:<42}{inputs:<24}{shapes(output)}")

# %% [markdown]
# **What this shows.** The shapes tell the story: $B$ images of $H \times W$ pixels become
# $N = G^2$ patch tokens plus one CLS token, $T = N + 1$ tokens of width $D$ (the second and
# third rows), and keep that shape through every layer until the classifier reads the CLS
# token; attention weights are $(B, h, T, T)$.
#
# <details><summary>Caveats</summary>
#
# Hooks record one instance per class (block 0), so the table shows interfaces, not what
# changes with depth.
# </details>
#
# `vit_core` does the same; to compare piece by piece we load the same weights into it.
# `from_huggingface` reads the config from the model (eps included) and copies every tensor;
# the next sections check each piece's output against the HuggingFace output recorded above.

# %%
ours = from_huggingface(hf)
print(ours.config)
assert ours.config.layer_norm_eps == hf.config.layer_norm_eps


def check(label: str, mine: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-4):
    print(f"{label}: shape {tuple(mine.shape)}, max |vit_core - HuggingFace| = {max_diff(mine, theirs):.1e}")
    assert mine.shape == theirs.shape and max_diff(mine, theirs) <= tol


# %% [markdown]
# ## `ViTPatchEmbeddings`: pixels to patch tokens
#
# A `Conv2d` called `projection`, with kernel and stride both equal to the patch side $P$, maps
# each non-overlapping $P \times P$ patch to a $D$-vector; `flatten(2).transpose(1, 2)` turns
# the $(B, D, G, G)$ map into $(B, N, D)$ tokens, row by row ($G = H/P$, $N = G^2$). Before that it checks the
# channel count against `config.num_channels`. This is `vit_core.PatchEmbedding` (notebook 01),
# with `projection` named `proj`.

# %%
_, args, kwargs, out = seen["ViTPatchEmbeddings"]
with torch.no_grad():
    check("ViTPatchEmbeddings vs vit_core patch_embed", ours.patch_embed(args[0]), out)

# %% [markdown]
# ## `ViTEmbeddings`: CLS token, positions, and two options
#
# It prepends the learned `cls_token` to the patch tokens and adds the learned
# `position_embeddings` (our `pos_embed`), then applies dropout:
#
# $$z_0 = [\,x_\text{cls};\; x_1 E;\; \dots;\; x_N E\,] + E_\text{pos},
# \qquad E_\text{pos} \in \mathbb{R}^{T \times D},\; T = N + 1,$$
#
# where $x_i$ is the $i$-th flattened patch and $E$ the patch projection.
#
# Two options have no counterpart in `vit_core`:
# - `bool_masked_pos` replaces chosen patch tokens by a learned `mask_token` (only built with
#   `use_mask_token=True`, for the masked-image-modelling model at the end of the file);
# - `interpolate_pos_encoding=True` resizes the position embeddings **on every forward call** to
#   fit a different image size (bicubic, CLS position kept). Without it, another image size is
#   an error. `vit_core` resizes once, on purpose, with `resize_image_size` (a section below
#   compares the two).

# %%
_, args, kwargs, out = seen["ViTEmbeddings"]
with torch.no_grad():
    check("ViTEmbeddings vs vit_core embed", ours.embed(args[0]), out)

# %% [markdown]
# ## `ViTAttention` and `eager_attention_forward`: four Linears and a pluggable kernel
#
# For every head $j = 1, \dots, h$ of width $d_h = D / h$,
#
# $$\mathrm{head}_j = \mathrm{softmax}\!\left(\frac{Q_j K_j^\top}{\sqrt{d_h}}\right) V_j, \qquad
# Q = X W_Q^\top + b_Q,\; K = X W_K^\top + b_K,\; V = X W_V^\top + b_V,$$
#
# and the heads are concatenated and projected by $W_O$. `ViTAttention` keeps four `Linear`s,
# `q_proj`, `k_proj`, `v_proj` and `o_proj`; `vit_core.Attention` stacks the first three into one
# `qkv` Linear whose weight rows are $[W_Q; W_K; W_V]$, and calls the fourth `proj`. The softmax
# part is not in the class: it looks up a function by `config._attn_implementation`. `"eager"`
# selects `eager_attention_forward`, which writes the formula out, takes the softmax in float32
# and returns the weights; `"sdpa"` (the default here), FlashAttention and flex attention are
# fused kernels that do not return them. The class returns a pair: (output, weights).
# The default back-end is printed first.

# %%
print("a model built without attn_implementation uses:",
      modeling_vit.ViTModel(tiny_config()).config._attn_implementation)
_, args, kwargs, (out, weights) = seen["ViTAttention"]
attn = ours.blocks[0].attn
hf_attn = hf.vit.layers[0].attention
stacked = torch.cat([hf_attn.q_proj.weight, hf_attn.k_proj.weight, hf_attn.v_proj.weight])  # (3D, D)
print(f"q_proj/k_proj/v_proj weights {tuple(hf_attn.q_proj.weight.shape)} each, "
      f"stacked {tuple(stacked.shape)} == vit_core qkv.weight {tuple(attn.qkv.weight.shape)}: "
      f"{torch.equal(stacked, attn.qkv.weight)}")
assert torch.equal(stacked, attn.qkv.weight)
with torch.no_grad():
    mine, my_weights = attn.forward_with_weights(args[0])  # vit_core's manual path: (B, heads, N, N) weights
    check("ViTAttention output vs vit_core attn", mine, out)
    check("attention weights", my_weights, weights)

# %% [markdown]
# ## `ViTMLP`: two Linears and a GELU
#
# `fc1` ($D \to D_\text{mlp}$), the activation named by `hidden_act`, `fc2` ($D_\text{mlp} \to D$):
# the same layers and names as `vit_core.MLP`. There is no dropout inside it; `ViTLayer` applies
# one dropout after the whole MLP (next section).

# %%
_, args, kwargs, out = seen["ViTMLP"]
with torch.no_grad():
    check("ViTMLP vs vit_core mlp", ours.blocks[0].mlp(args[0]), out)

# %% [markdown]
# ## `ViTLayer`: the pre-norm block
#
# $$x \leftarrow x + \mathrm{Drop}(\mathrm{Attn}(\mathrm{LN}_\text{before}(x))), \qquad
# x \leftarrow x + \mathrm{Drop}(\mathrm{MLP}(\mathrm{LN}_\text{after}(x))),$$
#
# `layernorm_before` is our `norm1` and `layernorm_after` our `norm2`, both with the config's
# $\epsilon$. The layer derives from `GradientCheckpointingLayer`, which can recompute it during
# the backward pass to save memory. Dropout sits in different places in the two libraries; the
# cell lists the `Dropout` modules each block holds (all are inactive in `eval()`, so the
# outputs agree).

# %%
_, args, kwargs, out = seen["ViTLayer"]
for label, block in (("HuggingFace ViTLayer", hf.vit.layers[0]), ("vit_core Block", ours.blocks[0])):
    drops = [name for name, m in block.named_modules() if isinstance(m, nn.Dropout)]
    print(f"{label}: Dropout modules {drops}")
with torch.no_grad():
    check("ViTLayer vs vit_core block", ours.blocks[0](args[0]), out)

# %% [markdown]
# **What this shows.** One `ViTLayer` equals one `vit_core` block in `eval()` mode; the two
# dropout lists differ, so training with dropout on would not be bit-identical.
#
# <details><summary>Caveats</summary>
#
# HuggingFace's layer holds one `Dropout` (rate
# `hidden_dropout_prob`), used twice, after the attention's `o_proj` and after the MLP's `fc2`,
# plus the attention-probability dropout inside the attention function; `vit_core` drops in the
# same places and also after the MLP's activation (`mlp.drop` is applied twice). With the
# default rates of 0.0 in both configs the difference is invisible.
# </details>

# %% [markdown]
# ## `ViTModel`: the backbone, and where 4.x's `ViTEncoder` went
#
# `ViTModel` runs the embeddings, then each layer of `self.layers` (a plain `nn.ModuleList`;
# transformers 4.x wrapped it in a `ViTEncoder` class as `encoder.layer`), then the final
# `layernorm`, then the optional pooler. It calls `create_bidirectional_mask`, which returns
# `None` when no attention mask is passed (images never need one; the cell checks it for the
# eager and sdpa back-ends). Hidden states and attention weights are not threaded through the
# layers: a decorator records them with hooks on `ViTLayer` and `ViTAttention` when the caller
# asks (`output_hidden_states`, `output_attentions`). It returns `last_hidden_state`
# $(B, T, D)$ and `pooler_output` (`None` without a pooler). `vit_core` has the same stack as
# `encoder.blocks` followed by `norm`.

# %%
_, args, kwargs, out = seen["ViTModel"]
with torch.no_grad():
    check("ViTModel last_hidden_state vs vit_core norm(encoder(embed(x)))",
          ours.norm(ours.encoder(ours.embed(pixel_values))), out.last_hidden_state)
print(f"pooler_output inside ViTForImageClassification: {out.pooler_output}")
from transformers.masking_utils import create_bidirectional_mask
for backend in ("eager", "sdpa"):
    mask = create_bidirectional_mask(config=tiny_config(attn_implementation=backend),
                                     inputs_embeds=out.last_hidden_state, attention_mask=None)
    print(f"create_bidirectional_mask(attention_mask=None), {backend}: {mask}")
    assert mask is None

# %% [markdown]
# ## `ViTPooler`: a layer `vit_core` leaves out
#
# The pooler is `dense` ($D \to$ `pooler_output_size`) and the activation named by `pooler_act`
# (`"tanh"` by default) applied to the CLS token of the final hidden states, the same pooler as
# BERT's, where it feeds the next-sentence-prediction head. `ViTModel` builds it by
# default (`add_pooling_layer=True`), so backbone checkpoints such as the ImageNet-21k ones carry
# `pooler.dense.*`; `ViTForImageClassification` builds its backbone **without** it and feeds
# the classifier the CLS token of `last_hidden_state` directly. `vit_core`'s head does the same,
# so `from_huggingface` drops a pooler and says so:

# %%
backbone = modeling_vit.ViTModel(transformers.ViTConfig(**{**hf.config.to_dict(), "num_hidden_layers": 1}))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from_huggingface(backbone, num_classes=10)  # a ViTModel has no classifier: a fresh 10-class head
print(f"ViTModel keys with 'pooler': {[k for k in backbone.state_dict() if 'pooler' in k]}")
print("warning:", caught[0].message)
assert any("ignoring the pooler" in str(w.message) for w in caught)

# %% [markdown]
# ## `ViTForImageClassification`: the head
#
# `classifier` is one `Linear` ($D \to$ `num_labels`) on `last_hidden_state[:, 0]`, the CLS token
# after the final LayerNorm: `vit_core`'s `head` on `norm(x)[:, 0]`. Given `labels`, it also
# computes the loss with a function chosen from `config.problem_type` (cross-entropy for
# single-label classification). The label names live in `config.id2label`.

# %%
with torch.no_grad():
    check("ViTForImageClassification logits vs vit_core", ours(pixel_values), hf_out.logits)
print(f"id2label: {len(hf.config.id2label)} entries, e.g. 0 -> {hf.config.id2label[0]!r}")

# %% [markdown]
# ## `ViTPreTrainedModel` and `ViTForMaskedImageModeling`: the rest of the file
#
# `ViTPreTrainedModel` is the base of the three models. It has no forward; it declares facts the
# library acts on: `base_model_prefix = "vit"` (why the backbone's keys start with `vit.` inside
# a classifier), the back-ends it supports, the modules whose outputs can be recorded, and
# `_init_weights` (truncated normal with `initializer_range` for the CLS token and positions).
# `ViTForMaskedImageModeling` is SimMIM: a backbone with a mask token and a decoder (a $1 \times 1$
# convolution and `PixelShuffle`) that reconstructs masked pixels. It is not a classifier, and
# `vit_core` does not model it; `from_huggingface` refuses it by name rather than dropping parts.

# %%
base = modeling_vit.ViTPreTrainedModel
print(f"ViTPreTrainedModel: base_model_prefix={base.base_model_prefix!r}, "
      f"main_input_name={base.main_input_name!r}, _supports_sdpa={base._supports_sdpa}, "
      f"records {sorted(base._can_record_outputs)}")
simmim = modeling_vit.ViTForMaskedImageModeling(tiny_config()).eval()
with torch.no_grad():
    reconstruction = simmim(pixel_values).reconstruction
print(f"ViTForMaskedImageModeling (1 tiny layer): pixel_values {tuple(pixel_values.shape)} -> reconstruction "
      f"{tuple(reconstruction.shape)}; decoder: {[type(m).__name__ for m in simmim.decoder]}")
try:
    from_huggingface(simmim)
except ValueError as error:
    print("from_huggingface refuses it:", error)
else:
    raise AssertionError("from_huggingface accepted ViTForMaskedImageModeling")

# %% [markdown]
# **What this shows.** Every class of the installed `modeling_vit.py` that computes something
# was run on real images, and each piece of `vit_core` loaded with the same weights produced the
# same tensor, to within float32 rounding (the printed differences). The two files differ in
# packaging (four Linears against a fused `qkv`, a config object against a dataclass, a
# pluggable attention kernel, hooks that record outputs) and in two pieces `vit_core` leaves out
# on purpose: the pooler and masked image modelling.
#
# ## The 4.x / 5.x renaming, and why the Hub still has the old names
#
# transformers 5 renamed the tensors along with the classes, but checkpoints on the Hub were
# written by 4.x. transformers 5 renames the keys while loading, and its `save_pretrained` writes
# the **old** names back, so files stay readable by both. We can see both layouts without a
# network: save a small model, read the file's keys, and pair each with the in-memory key that
# holds the same tensor (random weights make every tensor unique). The `vit_core` column is
# paired the same way, by value, against the model `from_huggingface` built (q, k and v are row
# blocks of `qkv`).

# %%
small = transformers.ViTForImageClassification(tiny_config(num_labels=3))
with torch.no_grad():
    for tensor in small.parameters():
        tensor.copy_(torch.randn_like(tensor))
in_memory = small.state_dict()
with tempfile.TemporaryDirectory() as folder:
    small.save_pretrained(folder)
    on_disk = load_file(f"{folder}/model.safetensors")
    config_json = json.loads(Path(folder, "config.json").read_text())
small_ours = from_huggingface(on_disk, config_json).state_dict()


def same_tensor(tensor, candidates) -> str:
    """The key in `candidates` holding exactly this tensor, or one q/k/v row block of it."""
    for key, value in candidates.items():
        if value.shape == tensor.shape and torch.equal(value, tensor):
            return key
        if value.ndim and value.shape[0] == 3 * tensor.shape[0]:
            for name, rows in zip("qkv", value.chunk(3)):  # the row blocks of a fused qkv
                if torch.equal(rows, tensor):
                    return f"{key} [{name} rows]"
    return "?"


rows = [(k, same_tensor(v, in_memory), same_tensor(v, small_ours)) for k, v in on_disk.items()
        if ".weight" in k or k.endswith(("cls_token", "position_embeddings"))]
print(f"{'on the Hub / transformers 4.x':<54}{'transformers ' + VERSION + ' in memory':<52}vit_core")
for hub, now, core in sorted(rows, key=lambda r: r[1]):
    print(f"{hub:<54}{now:<52}{core}")
assert all("?" not in row for row in rows)
print(f"\n(.bias keys follow their .weight; {len(on_disk)} tensors in all, every one paired)")

# %% [markdown]
# **What this shows.** The file that `save_pretrained` wrote carries the 4.x names, and every
# tensor in it is, value for value, one tensor of the model in memory under its 5.x name, and
# one tensor (or a row block of `qkv`) of `vit_core`. The pairing is by value, so it would catch
# a swapped q and k.
#
# <details><summary>Caveats</summary>
#
# It is shown on a one-layer model; the names of the other layers follow the same pattern with
# another index.
# </details>

# %% [markdown]
# `from_huggingface` reads both layouts. A state dict needs its `config.json`, because the number
# of heads cannot be read from the weights (a $768 \times 768$ query matrix is 12 heads of 64 or
# 6 of 128 alike) and the $\epsilon$ is not stored in any tensor:

# %%
try:
    from_huggingface(on_disk)
except ValueError as error:
    print("refused:", error)
hub_model = from_huggingface(on_disk, config_json)
x_small = torch.randn(2, 3, 224, 224)
with torch.no_grad():
    check("Hub-layout state dict + config.json vs the model that saved it",
          hub_model(x_small), small(x_small).logits)

# %% [markdown]
# ## The same parts in torchvision and timm
#
# Code elsewhere names these parts differently again. torchvision uses `nn.MultiheadAttention`,
# whose `in_proj_weight` stacks $W_Q, W_K, W_V$ like `vit_core`'s fused `qkv`; timm uses the same
# names as `vit_core`, except that `vit_core` keeps its blocks inside an `encoder`. The table puts
# them beside the Hub (4.x) names and the 4.x class that held each part; `{i}` is the block
# index, and indented rows are relative to one block. Every name is looked up by code: the
# torchvision, timm and `vit_core` ones in a small instance of each library's model (a name
# passes if it is the model's class, a sub-module or a parameter), the HuggingFace ones among
# the tensor names `save_pretrained` wrote above (the 4.x class names are shown, not checked).

# %%
NAME_TABLE = [  # (part, in one block?, HuggingFace 4.x class, Hub names, torchvision, timm, vit_core)
    ("whole classifier", False, "ViTForImageClassification", (), "VisionTransformer", "VisionTransformer", "ViT"),
    ("backbone without the head", False, "ViTModel", ("vit",), None, None, None),
    ("patch projection (conv)", False, "ViTPatchEmbeddings", ("vit.embeddings.patch_embeddings.projection",),
     "conv_proj", "patch_embed.proj", "patch_embed.proj"),
    ("CLS token", False, "ViTEmbeddings", ("vit.embeddings.cls_token",), "class_token", "cls_token", "cls_token"),
    ("position embeddings", False, "ViTEmbeddings", ("vit.embeddings.position_embeddings",),
     "encoder.pos_embedding", "pos_embed", "pos_embed"),
    ("stack of blocks", False, "ViTEncoder", ("vit.encoder.layer",), "encoder.layers", "blocks", "encoder.blocks"),
    ("one block", False, "ViTLayer", ("vit.encoder.layer.{i}",),
     "encoder.layers.encoder_layer_{i}", "blocks.{i}", "encoder.blocks.{i}"),
    ("LayerNorm before attention", True, "ViTLayer", ("layernorm_before",), "ln_1", "norm1", "norm1"),
    ("query, key, value", True, "ViTSelfAttention",
     ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
     "self_attention.in_proj_weight", "attn.qkv", "attn.qkv"),
    ("attention output projection", True, "ViTSelfOutput", ("attention.output.dense",),
     "self_attention.out_proj", "attn.proj", "attn.proj"),
    ("LayerNorm before MLP", True, "ViTLayer", ("layernorm_after",), "ln_2", "norm2", "norm2"),
    ("MLP first Linear (+GELU)", True, "ViTIntermediate", ("intermediate.dense",), "mlp.0", "mlp.fc1", "mlp.fc1"),
    ("MLP second Linear", True, "ViTOutput", ("output.dense",), "mlp.3", "mlp.fc2", "mlp.fc2"),
    ("final LayerNorm", False, "ViTModel", ("vit.layernorm",), "encoder.ln", "norm", "norm"),
    ("classification head", False, "ViTForImageClassification", ("classifier",), "heads.head", "head", "head"),
]
BLOCK_0 = {"HuggingFace": "vit.encoder.layer.0", "torchvision": "encoder.layers.encoder_layer_0",
           "timm": "blocks.0", "vit_core": "encoder.blocks.0"}
small_models = {  # one block of width 48 each, like `small` above
    "torchvision": torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=1, num_heads=4,
                                                       hidden_dim=48, mlp_dim=96, num_classes=3),
    "timm": timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=4, embed_dim=48, depth=1,
                                                             num_heads=4, mlp_ratio=2, num_classes=3),
    "vit_core": ViT(ViTConfig(image_size=32, patch_size=4, dim=48, depth=1, heads=4, mlp_dim=96, num_classes=3)),
}


def found(library: str, name: str, in_block: bool) -> bool:
    """Is `name` in that library's small model (or, for HuggingFace, in the file save_pretrained wrote)?"""
    name = f"{BLOCK_0[library]}.{name}" if in_block else name.replace("{i}", "0")
    if library == "HuggingFace":
        return any(key == name or key.startswith(name + ".") for key in on_disk)
    model = small_models[library]
    return (name == type(model).__name__ or name in dict(model.named_modules())
            or name in dict(model.named_parameters()))


missing = []
print(f"{'part':<31}{'HuggingFace 4.x  class: Hub name':<67}{'torchvision':<36}{'timm':<20}vit_core")
for part, in_block, hf_class, hub_names, *others in NAME_TABLE:
    ok = all(found("HuggingFace", n, in_block) for n in hub_names) if hub_names else (
        hf_class in config_json["architectures"])
    shown = "".join([hub_names[0], *(f" / .{n.rsplit('.', 1)[1]}" for n in hub_names[1:])]) if hub_names else ""
    cells = [f"{hf_class}: {shown}" if shown else hf_class]
    marks = ["✓" if ok else "✗"]
    for library, name in zip(("torchvision", "timm", "vit_core"), others):
        cells.append(name or "-")
        marks.append(" " if name is None else "✓" if found(library, name, in_block) else "✗")
    missing += [(part, cell) for cell, mark in zip(cells, marks) if mark == "✗"]
    cells = [f"{cell} {mark}" for cell, mark in zip(cells, marks)]
    print(f"{('  ' if in_block else '') + part:<31}{cells[0]:<67}{cells[1]:<36}{cells[2]:<20}{cells[3]}")
assert not missing, f"names not found: {missing}"
print("block classes:", ", ".join(f"{library} {type(model.get_submodule(BLOCK_0[library])).__name__}"
                                  for library, model in small_models.items()))

# %% [markdown]
# **What this shows.** Every name in the table was found where it says: HuggingFace's
# `ViTLayer`, torchvision's `EncoderBlock`, timm's `Block` and `vit_core.Block` (the block
# classes printed) are one computation under four sets of names.
#
# Two differences hide behind the names: HuggingFace 4.x's
# `ViTSelfOutput` and `ViTOutput` both hold a `dense` Linear, but only `ViTOutput` added the
# residual (the attention residual was added in `ViTLayer`); and torchvision's MLP is an
# `nn.Sequential` (Linear, GELU, Dropout, Linear, Dropout), hence the indices 0 and 3.
# `vit_core.from_torchvision` and `from_timm` (notebook 05) do exactly this renaming.

# %% [markdown]
# ## LayerNorm $\epsilon = 10^{-12}$
#
# LayerNorm divides by $\sqrt{\sigma^2 + \epsilon}$. HuggingFace's ViT default is
# $\epsilon = 10^{-12}$; the same weights in torchvision or timm run with $10^{-6}$. For tokens
# whose variance is far above $\epsilon$ the two agree to many digits, which is why the mix-up
# goes unnoticed; `from_huggingface` reads it from the config anyway. How far apart are the
# logits of this model with the wrong $\epsilon$?

# %%
wrong_eps = ViT(ViTConfig(**{**ours.config.__dict__, "layer_norm_eps": 1e-6})).eval()
wrong_eps.load_state_dict(ours.state_dict())
with torch.no_grad():
    eps_gap = max_diff(wrong_eps(pixel_values), hf_out.logits)
    token_var = seen["ViTLayer"][1][0].var(-1)  # (B, N): variance of each token entering block 0
print(f"{WEIGHTS}: logits with eps 1e-6 instead of {hf.config.layer_norm_eps:g}: max |diff| = {eps_gap:.1e}; "
      f"smallest token variance entering block 0: {token_var.min():.2e}")
verdict = "larger" if eps_gap > 1e-4 else "smaller"
print(f"that is {verdict} than the 1e-4 this series allows between implementations of the same model")

# %% [markdown]
# **What this shows.** The wrong $\epsilon$ moves this model's logits by the printed gap, which
# the tokens with the smallest variance decide: the first-order change of a LayerNorm output is
# about $\Delta\epsilon / (2\sigma^2)$ relative (exercise 3 measures the rule).
#
# <details><summary>Caveats</summary>
#
# The printed gap and variance are this model's; a pretrained checkpoint has its own. Reading
# $\epsilon$ from the config costs nothing and removes the question.
# </details>

# %% [markdown]
# ## `interpolate_pos_encoding` against `resize_image_size`
#
# At another image size the number of patches changes, and so must the position embeddings.
# HuggingFace refuses a different size unless `interpolate_pos_encoding=True` is passed, and then
# resizes the $14 \times 14$ grid of embeddings bicubically on every call. `vit_core` makes a
# model for the new size once (`from_huggingface(..., image_size=)` or `resize_image_size`), with
# the same bicubic resize, so the logits agree:

# %%
NEW_SIZE = 256  # 16 x 16 patches of 16 px
x_big = F.interpolate(pixel_values, size=NEW_SIZE, mode="bilinear", align_corners=False)  # (B, 3, 256, 256)
try:
    hf(x_big)
except ValueError as error:
    print("without the flag:", error)
resized = from_huggingface(hf, image_size=NEW_SIZE)
with torch.no_grad():
    check(f"{NEW_SIZE} px: HuggingFace interpolate_pos_encoding=True vs vit_core image_size={NEW_SIZE}",
          resized(x_big), hf(x_big, interpolate_pos_encoding=True).logits)
print(f"vit_core pos_embed after resizing: {tuple(resized.pos_embed.shape)}")

# %% [markdown]
# **What this shows.** The two resizes are the same numbers (both bicubic at cell centres;
# notebook 10 compares them with torchvision's and timm's, which differ), so resizing once gives
# HuggingFace's per-call logits; HuggingFace interpolates on every forward call, `vit_core` once.
#
# <details><summary>Caveats</summary>
#
# Neither says how well a model *works* at the new size without fine-tuning; these are random or
# ImageNet weights fed upscaled CIFAR-10 images.
# </details>

# %% [markdown]
# ## Equal logits, equal attention, at the end
#
# The whole model once more, with every layer's attention weights: HuggingFace's
# `output_attentions=True` (eager back-end) against `vit_core`'s `return_attention=True`.

# %%
with torch.no_grad():
    theirs = hf(pixel_values, output_attentions=True)
    logits, attentions = ours(pixel_values, return_attention=True)
worst = max(max_diff(a, b) for a, b in zip(attentions, theirs.attentions))
print(f"{WEIGHTS} on {len(labels)} {DATASET} images:")
print(f"  logits {tuple(logits.shape)}: max |vit_core - HuggingFace| = {max_diff(logits, theirs.logits):.1e}")
print(f"  attention: {len(attentions)} layers of {tuple(attentions[0].shape)}, "
      f"worst max |diff| = {worst:.1e}")
assert len(attentions) == len(theirs.attentions) == hf.config.num_hidden_layers
assert max_diff(logits, theirs.logits) <= 1e-4 and worst <= 1e-4

# %%
if IS_REAL:
    top = logits.softmax(-1).topk(1)
    for label, index, p in zip(labels.tolist(), top.indices[:, 0].tolist(), top.values[:, 0].tolist()):
        print(f"{CIFAR10_CLASSES[label]:>10} -> {hf.config.id2label[index][:40]} ({p:.0%})")
else:
    print(f"no predictions shown: the {WEIGHTS} has random weights, so its top classes mean nothing")

# %% [markdown]
# **What this shows.** `vit_core.from_huggingface` reproduces HuggingFace's logits and every layer's attention
# weights (the differences printed above, all float32 rounding), from the model object and from
# a Hub-layout file with its `config.json`. The points where the two libraries really differ are
# small but concrete: $\epsilon$ (read from the config; the printed gap is what ignoring it costs
# this model), the pooler (dropped, with a warning), position resizing (per call there, once
# here, the same numbers), and the tensor names, which changed between transformers 4 and 5 while
# the files on the Hub kept the old ones.
#
# ## Exercises
#
# 1. **Fuse q, k, v by hand.** Take block 3 of the HuggingFace model and build the fused `qkv`
#    weight and bias yourself from `q_proj`, `k_proj` and `v_proj`. Check them against
#    `ours.blocks[3].attn.qkv`. Which order must the three go in, and why?
# 2. **The pooler by hand.** For the ViTModel `backbone` built above, compute its
#    `pooler_output` from `last_hidden_state` with `torch.tanh` and the pooler's `dense` weights,
#    and check it against the model's own `pooler_output`.
# 3. **When does $\epsilon$ matter?** Normalise tokens of standard deviation $s$ with
#    $\epsilon = 10^{-12}$ and $10^{-6}$ for $s = 1, 10^{-1}, 10^{-2}, 10^{-3}$. From which $s$ on do
#    the outputs differ by more than $10^{-4}$?
#
# Solutions follow; CI runs them and asserts what they claim.

# %% [markdown]
# ---
# ### Solutions (run by CI)

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 1: the rows of vit_core's qkv are [W_q; W_k; W_v], because Attention splits its output
# as "(three h d)": the first D features are the queries, then the keys, then the values.
layer = hf.vit.layers[3].attention
qkv_weight = torch.cat([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight])  # (3D, D)
qkv_bias = torch.cat([layer.q_proj.bias, layer.k_proj.bias, layer.v_proj.bias])  # (3D,)
fused = ours.blocks[3].attn.qkv
assert torch.equal(qkv_weight, fused.weight) and torch.equal(qkv_bias, fused.bias)
swapped = torch.cat([layer.k_proj.weight, layer.q_proj.weight, layer.v_proj.weight])
print("q, k, v order matches vit_core's qkv; k, q, v does not:", not torch.equal(swapped, fused.weight))

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 2: pooler_output = tanh(dense(CLS token of last_hidden_state)).
with torch.no_grad():
    out = backbone(pixel_values)
    dense = backbone.pooler.dense
    by_hand = torch.tanh(F.linear(out.last_hidden_state[:, 0], dense.weight, dense.bias))  # (B, 768)
print(f"pooler by hand vs ViTModel.pooler_output: max |diff| = {max_diff(by_hand, out.pooler_output):.1e}")
assert max_diff(by_hand, out.pooler_output) <= 1e-6

# %% tags=["hide-cell"] jupyter={"source_hidden": true}
# Exercise 3: LayerNorm with eps 1e-12 vs 1e-6 on tokens of standard deviation s (D = 768).
tokens = torch.randn(64, 768, dtype=torch.float64)
gaps = {s: max_diff(F.layer_norm(s * tokens, (768,), eps=1e-12), F.layer_norm(s * tokens, (768,), eps=1e-6))
        for s in (1.0, 1e-1, 1e-2, 1e-3)}
for s, gap in gaps.items():
    print(f"std {s:g}: max |LN_1e-12 - LN_1e-6| = {gap:.1e}")
first = next(s for s, gap in gaps.items() if gap > 1e-4)
print(f"the outputs differ by more than 1e-4 from std {first:g} down (variance {first ** 2:g}, "
      f"{first ** 2 / 1e-6:,.0f} times the larger eps); each tenfold drop in std multiplies the gap by about "
      f"{gaps[0.1] / gaps[1.0]:.0f}, as the first-order change 1e-6 / (2 std^2) predicts")
assert first == 0.1 and 50 < gaps[0.1] / gaps[1.0] < 200

