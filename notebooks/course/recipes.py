"""The recipe book: every named training recipe of the series, defined once (model config,
training config, augmentation, data selection), the helpers that read or compare recipes, and
the one naming rule of a run's files. `course.runs` runs, records and exports them; notebooks
and the command line share these definitions.

    python -m course.recipes list
    python -m course.recipes run tintn --out ~/vit-runs/tintn --threads 1
    python -m course.recipes export --run ~/vit-runs/tintn      # name: the run's recipe (+ -seed<n>)

Recipes named after a source project (`tintn`, `transfer-mbastola`) reproduce that project's
own recipe: tintn's vision-transformer-from-scratch
(https://github.com/tintn/vision-transformer-from-scratch) and the fine-tuning of mbastola's
"Vision Transformer (ViT) for Image Classification" in neural-nets-in-python
(https://github.com/mbastola/neural-nets-in-python). Renamed recipes keep loading under their
old names (RENAMED).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from vit_core import ViT, ViTConfig
from vit_core import augment as aug
from vit_core.data import CIFAR10_MEAN, CIFAR10_STD
from course.stn import STNClassifier, STNConfig
from vit_core.train import TrainConfig

from course.cnn import ResNet, ResNetConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    about: str                              # one line: what it is and where it comes from
    model: ViTConfig | STNConfig | ResNetConfig  # the model class follows the config's type
    train: TrainConfig
    batch_size: int
    augment: str = "crop_flip"              # key of AUGMENTS: what each training image goes through
    mix: bool = False                       # MixUp or CutMix per batch (soft targets)
    normalize: str = "cifar10"              # 'cifar10' (its channel mean/std) | 'half' (mean = std = 0.5)
    classes: tuple[int, ...] | None = None  # CIFAR-10 labels kept (relabelled 0..k-1 in this order)
    train_per_class: int | None = None      # images per class kept for training (after the val split)
    val_per_class: int = 0                  # validation images per class carved from train; 0 = none
    init_from: str | None = None            # recipe whose exported weights initialise the model
    trainable_blocks: int | None = None     # fine-tuning: train only the last k blocks (+ head); None = all
    train_norm: bool = True                 # fine-tuning: whether the final LayerNorm trains
    zero_head: bool = True                  # fine-tuning: the new head starts at zero (else nn.Linear's init)
    keep_best: bool = False                 # test the weights of the best validation epoch, not the last
    reference: str = ""                     # the figure this recipe is compared with, and its source


AUGMENTS = {
    "none": lambda: False,
    "crop_flip": lambda: True,              # batched pad-4 crop + flip (vit_core.augment.random_crop_flip)
    "tintn": aug.flip_resized_crop,         # flip + RandomResizedCrop(0.8-1.0), as tintn's data.py
    "flip_rotate": aug.flip_rotate,         # mbastola's flip + RandomRotation(10)
    "trivialaugment": aug.trivial_augment_crop_flip,
    "randaugment": aug.rand_augment_crop_flip,
}
NORMALIZE = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "half": ((0.5,) * 3, (0.5,) * 3)}

# The series' tiny ViT (4 blocks, width 48), with the CLS-only last block: same maths, 1.27x faster on CPU
TINY_MODEL = ViTConfig.cifar10_tiny(cls_only_last_block=True)
CAT_DOG = (3, 5)                        # CIFAR-10 labels of cat and dog: notebook 09's task
NOT_CAT_DOG = (0, 1, 2, 4, 6, 7, 8, 9)  # the 8 other classes: notebook 09's pretraining data
CAT_DOG_SIZES = (250, 1000, 4500)       # training images per class in 09's sweep (4,500 = all but val)
FIRST_FIVE, LAST_FIVE = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)  # notebook 08's stand-in: pretrain, then transfer
TRANSFER_EPOCHS = 5                     # notebook 08's arms: mbastola's 5 epochs, the same for every arm
CAT_DOG_STEPS = 1000                    # optimizer steps per cat-vs-dog run, the same for every arm and size
STN_TRAIN = TrainConfig(epochs=50, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0, warmup_epochs=0,
                        schedule="constant", label_smoothing=0.0, grad_clip=None)  # notebook 12, both arms


def make_model(config):
    """A fresh model for a config: STNClassifier, ResNet or ViT, by the config's type."""
    if isinstance(config, ResNetConfig):
        return ResNet(config)
    return STNClassifier(config) if isinstance(config, STNConfig) else ViT(config)


def config_from_dict(d: dict):
    """The model config a record or an export holds (JSON turns tuples into lists)."""
    if "widths" in d:
        return ResNetConfig(**d)
    if "spatial_transformer" in d:
        return STNConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    return ViTConfig(**d)



def _transfer(arm: str) -> "Recipe":
    """One arm of notebook 08's stand-in on CIFAR-10 classes 5-9: mbastola's fine-tuning
    recipe, a better one, or the same model from scratch; same data and epochs, best
    validation epoch tested."""
    mbastola = arm == "mbastola"
    train = (TrainConfig(epochs=TRANSFER_EPOCHS, lr=1e-3, optimizer="adam", weight_decay=0.0, schedule="constant",
                         warmup_epochs=0, label_smoothing=0.0, grad_clip=None) if mbastola else
             TrainConfig(epochs=TRANSFER_EPOCHS, lr=1e-3, weight_decay=0.05, warmup_epochs=0.5, label_smoothing=0.1))
    about = {"mbastola": "from cifar5-backbone, mbastola's fine-tuning: last 3 blocks + a default-init head train, final LayerNorm frozen, "
                        "Adam 1e-3 constant, flip + rotation 10, batch 64",
             "improved": "from cifar5-backbone, every block trains, zero-init head, AdamW 1e-3 warmup + cosine, smoothing 0.1, pad-crop + flip",
             "scratch": "the improved recipe from random weights"}[arm]
    return Recipe(f"transfer-{arm}", f"notebook 08 stand-in on CIFAR-10 classes 5-9, {about}",
                  replace(TINY_MODEL, num_classes=5), train, batch_size=64,
                  augment="flip_rotate" if mbastola else "crop_flip", classes=LAST_FIVE, val_per_class=500,
                  init_from=None if arm == "scratch" else "cifar5-backbone", trainable_blocks=3 if mbastola else None,
                  train_norm=not mbastola, zero_head=not mbastola, keep_best=True,
                  reference="mbastola's neural-nets-in-python (ViT-B/16 ImageNet-1k, CIFAR-100 at 224 px): "
                            "its real task, not this stand-in")


def _cat_dog(arm: str, per_class: int) -> "Recipe":
    """One arm of notebook 09's sweep: the same model, data and budget, from scratch or from
    catdog-backbone; the weights of the best validation epoch are tested."""
    epochs = round(CAT_DOG_STEPS / (2 * per_class // 64))  # about CAT_DOG_STEPS steps of 64 images
    return Recipe(f"catdog-{arm}-{per_class}", f"cat vs dog, {per_class} train images per class, {arm}",
                  replace(TINY_MODEL, num_classes=2),
                  TrainConfig(epochs=epochs, lr=1e-3, weight_decay=0.05, warmup_epochs=epochs / 20),
                  batch_size=64, classes=CAT_DOG, train_per_class=per_class, val_per_class=500,
                  init_from="catdog-backbone" if arm == "pretrained" else None, keep_best=True,
                  reference="~64% validation from scratch (the ViTCatsVDogs project, cats vs dogs, 224 px)")


LADDER_EPOCHS = 10  # every rung of the small-data ladder trains this many epochs
FINAL_EPOCHS = 42  # the ladder's final recipe: what fits 90 minutes on 2 threads, with margin


def _ladder() -> list["Recipe"]:
    """The small-data ladder: improved-cpu's training recipe at LADDER_EPOCHS epochs, one model
    change added per rung, and a ResNet of similar size on the same budget."""
    train = TrainConfig(epochs=LADDER_EPOCHS, lr=3e-3, weight_decay=0.05, warmup_epochs=1,
                        label_smoothing=0.1, grad_clip=1.0)
    conv = replace(TINY_MODEL, stem="conv")
    seq = replace(conv, pool="seq", cls_only_last_block=False)
    rungs = [("1-vit", "the tiny ViT: 4x4 linear patches, CLS token, learned positions", TINY_MODEL),
             ("2-conv-stem", "+ a convolutional tokenizer (two 3x3 conv + max-pool layers)", conv),
             ("3-seq-pool", "+ sequence pooling instead of the CLS token", seq),
             ("4-sincos", "+ fixed 2-D sin-cos positions instead of learned ones",
              replace(seq, pos="sincos")),
             ("cnn", "a ResNet (torchvision BasicBlocks, widths 16/32/64, 2 blocks a stage)",
              ResNetConfig())]
    ladder = [Recipe(f"ladder-{key}", f"small-data ladder, {LADDER_EPOCHS} epochs: {about}; "
                     "improved-cpu's AdamW 3e-3, wd 0.05, warmup 1 + cosine, smoothing 0.1, "
                     "crop + flip", model, train, batch_size=256, val_per_class=500,
                     reference="CCT (arXiv 2104.05704): 80% CIFAR-10 in < 30 min on a 12-core CPU")
              for key, about, model in rungs]
    final = Recipe("ladder-final", f"the ladder's ViT (conv tokenizer + sequence pooling) for "
                   f"{FINAL_EPOCHS} epochs, sized to train in under 90 minutes on 2 threads; "
                   "AdamW 3e-3, wd 0.05, warmup 3 + cosine, smoothing 0.1, crop + flip", seq,
                   replace(train, epochs=FINAL_EPOCHS, warmup_epochs=3), batch_size=256,
                   val_per_class=500,
                   reference="goal >= 80% test, single view, in <= 90 min on 2 CPU threads")
    return ladder + [final]


# Old recipe names, kept loadable: a record, a shipped file or a call may still use them.
RENAMED = {"seed-003": "tintn", "transfer-seed001": "transfer-mbastola"}


def current_name(name: str) -> str:
    """A recipe or run name under its recipe's current name: an old name (RENAMED), alone or
    followed by '-seed<n>', becomes the new one with the same suffix."""
    for old, new in RENAMED.items():
        if name == old or name.startswith(old + "-"):
            return new + name[len(old):]
    return name


def run_name(recipe: str, seed: int = 0) -> str:
    """The name of one run's files and folders: the recipe's name for seed 0, else
    '<recipe>-seed<seed>' (the suffix is the random seed)."""
    return current_name(recipe) + (f"-seed{seed}" if seed else "")


class RecipeBook(dict):
    """{name: Recipe}; an old name (RENAMED) finds the renamed recipe."""

    def __missing__(self, name):
        if current_name(name) != name:
            return self[current_name(name)]
        raise KeyError(name)

    def get(self, name, default=None):
        return self[name] if current_name(name) in self else default


RECIPES = RecipeBook({r.name: r for r in [
    Recipe("tintn", "the tiny ViT as tintn's vision-transformer-from-scratch ran it: its model (no final LayerNorm, N(0, 0.02) init, tanh "
           "GELU), AdamW 1e-2, wd 1e-2 on every tensor, constant lr, batch 256, flip + resized crop, 100 epochs",
           replace(TINY_MODEL, final_norm=False, gelu="tanh", init="normal"),
           TrainConfig(epochs=100, lr=1e-2, weight_decay=1e-2, decay_all=True, optimizer="adamw", warmup_epochs=0,
                       schedule="constant", label_smoothing=0.0, grad_clip=None),
           batch_size=256, augment="tintn", normalize="half",
           reference="75.5% test after 100 epochs (tintn's vision-transformer-from-scratch README)"),
    Recipe("improved-cpu", "the tiny ViT, trained well in 90 CPU minutes on 2 threads: AdamW 3e-3, wd 0.05, warmup 3 "
           "+ cosine, label smoothing 0.1, pad-crop + flip, 70 epochs, 45k train / 5k val", TINY_MODEL,
           TrainConfig(epochs=70, lr=3e-3, weight_decay=0.05, warmup_epochs=3, label_smoothing=0.1, grad_clip=1.0),
           batch_size=256, augment="crop_flip", val_per_class=500,
           reference="goal >= 80% test in <= 90 min on 2 CPU threads"),
    Recipe("catdog-backbone", "notebook 09's backbone: the tiny ViT trained on the 8 CIFAR-10 classes other than "
           "cat and dog (36,800 train / 3,200 val), AdamW 2e-3, warmup 2 + cosine, smoothing 0.1, crop + flip",
           replace(TINY_MODEL, num_classes=8),
           TrainConfig(epochs=25, lr=2e-3, weight_decay=0.05, warmup_epochs=2, label_smoothing=0.1),
           batch_size=256, classes=NOT_CAT_DOG, val_per_class=400),
    *[_cat_dog(arm, n) for n in CAT_DOG_SIZES for arm in ("scratch", "pretrained")],
    replace(_cat_dog("scratch", CAT_DOG_SIZES[-1]), name="catdog-scratch-long",
            about=f"cat vs dog from scratch, {CAT_DOG_SIZES[-1]} train images per class, 4x the sweep's steps",
            train=replace(_cat_dog("scratch", CAT_DOG_SIZES[-1]).train, epochs=28, warmup_epochs=1.4)),
    Recipe("cifar5-backbone", "notebook 08's stand-in backbone: the tiny ViT trained on CIFAR-10 classes 0-4 "
           "(22,500 train / 2,500 val), AdamW 2e-3, warmup 2 + cosine, smoothing 0.1, crop + flip",
           replace(TINY_MODEL, num_classes=5),
           TrainConfig(epochs=30, lr=2e-3, weight_decay=0.05, warmup_epochs=2, label_smoothing=0.1),
           batch_size=256, classes=FIRST_FIVE, val_per_class=500),
    *[_transfer(arm) for arm in ("mbastola", "improved", "scratch")],
    Recipe("gpu-06", "notebook 06 on one GPU (python -m tools.gpu_check; not run yet): 384-dim, 7 blocks, 12 heads, "
           "MLP 768, drop-path 0.1; AdamW 2e-3, wd 0.05, warmup 5 + cosine, smoothing 0.1, crop + flip + "
           "MixUp/CutMix, batch 512, 100 epochs", replace(TINY_MODEL, dim=384, depth=7, heads=12, mlp_dim=768, drop_path=0.1),
           TrainConfig(epochs=100, lr=2e-3, weight_decay=0.05, warmup_epochs=5, label_smoothing=0.1),
           batch_size=512, mix=True, reference="goal >= 90% test in <= 10 min on one GPU, <= 10 M params (issue 11)"),
    *[Recipe(f"stn-{arm}", f"notebook 12: EVA6's small CNN {arm} a spatial transformer in front; SGD 0.01, "
             "momentum 0.9, constant, batch 256, no augmentation, 50 epochs, 45k train / 5k val",
             STNConfig(spatial_transformer=arm == "with"), STN_TRAIN, batch_size=256, augment="none",
             val_per_class=500, reference="60.18% test after epoch 50 (the log of EVA6 Session 12 by Neha Mittal and "
             "Vivek Chaudhary; its README calls it 'Train Accuracy')") for arm in ("with", "without")],
    *_ladder(),
]})


# ---------------------------------------------------------------- reading recipes

def scaled_down(recipe: Recipe, epochs: int = 2, steps: int = 20, train_per_class: int = 200) -> Recipe:
    """The same recipe on a budget that only checks the code runs and learns (the smoke
    profile): a few steps per epoch, a few images per class. Its numbers are not results."""
    per_class = min(train_per_class, recipe.train_per_class or train_per_class)
    warmup = min(recipe.train.warmup_epochs, epochs / 4)
    return replace(recipe, name=f"{recipe.name}-scaled-down", train_per_class=per_class,
                   train=replace(recipe.train, epochs=epochs, max_steps_per_epoch=steps, warmup_epochs=warmup))


def differences(a: Recipe, b: Recipe) -> list[tuple[str, object, object]]:
    """(setting, value in a, value in b) for every field of two recipes, their TrainConfigs and
    their model configs that differs (name, description and reference left out)."""
    rows = []
    for part_a, part_b, prefix in ((a, b, ""), (a.train, b.train, "train."), (a.model, b.model, "model.")):
        for f in fields(part_a):
            va, vb = getattr(part_a, f.name), getattr(part_b, f.name)
            if f.name not in ("name", "about", "train", "model", "reference") and va != vb:
                rows.append((prefix + f.name, va, vb))
    return rows


def recipe_of(record: dict) -> Recipe:
    """The Recipe a record was made with, rebuilt from the record itself (not from RECIPES,
    which may have changed since)."""
    cfg = dict(record["config"])
    fields = {k: v for k, v in cfg.items() if k in Recipe.__dataclass_fields__ and k not in ("model", "train")}
    classes = fields.get("classes")
    fields["classes"] = tuple(classes) if classes is not None else None
    return Recipe(name=current_name(record["recipe"]), about=record["about"], model=config_from_dict(cfg["model"]),
                  train=TrainConfig(**cfg["train"]), **fields)


if __name__ == "__main__":  # `python -m course.recipes ...`: the command line lives with the runs
    from course.runs import main

    main()
