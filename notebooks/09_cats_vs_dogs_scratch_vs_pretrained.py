# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.16.4
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vit-notebooks/vit-notebooks/blob/main/notebooks/09_cats_vs_dogs_scratch_vs_pretrained.ipynb)
#
# # 09 · Cats vs dogs: a ViT from scratch vs a pretrained ViT
#
# The same model, the same training budget, the same schedule — trained once from random
# weights and once from weights pretrained on other images. The only difference is where the
# weights start, so any gap between the two curves is what pretraining bought.
#
# **What you will learn**
# - why a Vision Transformer needs more data than a CNN of the same size: the *inductive bias*
#   a convolution has built in (locality, translation equivariance) and a ViT must learn;
# - how to run a fair scratch-vs-pretrained comparison: identical model, budget, schedule and
#   head initialisation, one plot, one table;
# - how the gap depends on how much labelled data you have (accuracy vs training-set size);
# - the real recipe (ImageNet ViT-B/16 from torchvision on Oxford-IIIT Pet or a Kaggle folder)
#   and the offline stand-in this notebook falls back to: a genuine transfer experiment inside
#   CIFAR-10, pretraining on 8 classes and transferring to cat vs dog.

# %%
# Setup: on Colab, clone the repository and install what Colab lacks; locally this only finds vit_core.
import subprocess, sys
from pathlib import Path
if "google.colab" in sys.modules and not Path("vit-notebooks").exists():
    subprocess.run("git clone -q --depth 1 https://github.com/vit-notebooks/vit-notebooks && "
                   "pip install -q einops timm", shell=True, check=True)
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents, Path("vit-notebooks").resolve()]
            if (p / "vit_core").is_dir())
sys.path.insert(0, str(ROOT))
from vit_core import env
env.describe()  # profile and hardware of this run, printed first
