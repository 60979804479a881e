"""from_huggingface gives transformers' own logits and attention weights, from a model object and
from a Hub-layout checkpoint, and refuses what vit_core does not model, by name."""
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file  # noqa: E402  (installed with transformers)
from test_loaders import randomise  # noqa: E402

from vit_core import StateDictMismatchError, from_huggingface  # noqa: E402

# transformers.ViTConfig arguments; "vit_b_16" is transformers' default config (eps 1e-12)
CONFIGS = {
    "seed": dict(image_size=32, patch_size=4, hidden_size=48, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=192, num_labels=10),
    "unusual": dict(image_size=64, patch_size=8, num_channels=1, hidden_size=96, num_hidden_layers=3,
                    num_attention_heads=3, intermediate_size=160, num_labels=7, layer_norm_eps=0.05),
    "vit_b_16": dict(num_labels=1000),
}
BATCH = {"seed": 2, "unusual": 2, "vit_b_16": 1}  # ViT-B/16 at batch 1 keeps a 2-core CPU run short
TOLERANCE = 1e-4


def hf_vit(name, cls=None, seed=0):
    """A random-weight transformers model (every tensor random, LayerNorms too), eager attention."""
    config = transformers.ViTConfig(**CONFIGS[name], attn_implementation="eager")
    return randomise((cls or transformers.ViTForImageClassification)(config), seed)


def images(name, size=None, batch=None):
    config = transformers.ViTConfig(**CONFIGS[name])
    size = size or config.image_size
    generator = torch.Generator().manual_seed(1)
    return torch.randn(batch or BATCH[name], config.num_channels, size, size, generator=generator)


def assert_same_outputs(ours, hf, x):
    """Logits, and every layer's (B, heads, N, N) attention weights, equal to TOLERANCE."""
    with torch.no_grad():
        theirs = hf(x, output_attentions=True)
        logits, attentions = ours(x, return_attention=True)
    assert (logits - theirs.logits).abs().max().item() <= TOLERANCE
    assert len(attentions) == len(theirs.attentions) == hf.config.num_hidden_layers
    for mine, their in zip(attentions, theirs.attentions):
        assert mine.shape == their.shape
        assert (mine - their).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("name", CONFIGS)
def test_model_object_matches_logits_and_attention(name):
    hf = hf_vit(name)
    model = from_huggingface(hf)
    c, h = model.config, hf.config
    assert (c.image_size, c.patch_size, c.in_channels, c.dim, c.depth, c.heads, c.mlp_dim, c.num_classes,
            c.qkv_bias, c.layer_norm_eps) == (h.image_size, h.patch_size, h.num_channels, h.hidden_size,
                                              h.num_hidden_layers, h.num_attention_heads, h.intermediate_size,
                                              h.num_labels, h.qkv_bias, h.layer_norm_eps)
    assert_same_outputs(model, hf, images(name))


def test_default_eps_is_huggingfaces_and_it_matters():
    assert transformers.ViTConfig().layer_norm_eps == 1e-12
    seed = hf_vit("seed")
    no_eps = {k: v for k, v in seed.config.to_dict().items() if k != "layer_norm_eps"}  # as in an old file
    assert from_huggingface(seed.state_dict(), no_eps).config.layer_norm_eps == 1e-12
    hf = hf_vit("unusual")  # eps 0.05: reading another eps would change the logits
    wrong = from_huggingface(hf.state_dict(), {**hf.config.to_dict(), "layer_norm_eps": 1e-6})
    x = images("unusual")
    with torch.no_grad():
        assert (wrong(x) - hf(x).logits).abs().max().item() > 100 * TOLERANCE


@pytest.mark.parametrize("name", ["seed", "unusual"])
def test_hub_layout_state_dict_matches(name, tmp_path):
    """save_pretrained writes the Hub layout (vit.encoder.layer.N...): read it with its config.json."""
    hf = hf_vit(name, seed=3)
    hf.save_pretrained(tmp_path)
    state_dict = load_file(tmp_path / "model.safetensors")
    config = json.loads((tmp_path / "config.json").read_text())
    assert "vit.encoder.layer.0.attention.attention.query.weight" in state_dict
    assert "vit.encoder.layer.0.intermediate.dense.weight" in state_dict
    assert not any(k.startswith("vit.layers.") for k in state_dict)
    assert_same_outputs(from_huggingface(state_dict, config), hf, images(name))


def test_transformers_5_state_dict_matches():
    hf = hf_vit("seed", seed=4)
    state_dict = hf.state_dict()
    assert "vit.layers.0.attention.q_proj.weight" in state_dict
    assert "vit.layers.0.mlp.fc1.weight" in state_dict
    assert_same_outputs(from_huggingface(state_dict, hf.config.to_dict()), hf, images("seed"))


def test_vit_model_pooler_is_ignored_with_a_warning():
    hf = hf_vit("seed", cls=transformers.ViTModel)
    assert hf.pooler is not None
    with pytest.raises(ValueError, match="no classifier.*pass num_classes="), pytest.warns(UserWarning):
        from_huggingface(hf)
    with pytest.warns(UserWarning, match=r"ignoring the pooler \(pooler.dense.bias, pooler.dense.weight\)"):
        model = from_huggingface(hf, num_classes=5)
    x = images("seed")
    with torch.no_grad():
        tokens = model.norm(model.encoder(model.embed(x)))  # (B, N, dim)
        assert (tokens - hf(x).last_hidden_state).abs().max().item() <= TOLERANCE
    assert model.head.out_features == 5


def test_without_qkv_bias():
    name = "unusual"
    hf = randomise(transformers.ViTForImageClassification(transformers.ViTConfig(
        **CONFIGS[name], qkv_bias=False, attn_implementation="eager")))
    model = from_huggingface(hf)
    assert not model.config.qkv_bias
    assert_same_outputs(model, hf, images(name))


def test_interpolate_pos_encoding_equals_resize_image_size():
    hf = hf_vit("seed", seed=5)
    model = from_huggingface(hf, image_size=48)
    x = images("seed", size=48)
    with torch.no_grad():
        assert (model(x) - hf(x, interpolate_pos_encoding=True).logits).abs().max().item() <= TOLERANCE


def test_config_is_required_for_a_state_dict():
    with pytest.raises(ValueError, match="number of heads .* cannot be read from the weights; pass config="):
        from_huggingface(hf_vit("seed").state_dict())


def test_other_heads_are_refused_by_name():
    masked = hf_vit("seed", cls=transformers.ViTForMaskedImageModeling)
    refusal = "reads ViTForImageClassification and ViTModel, not ViTForMaskedImageModeling"
    with pytest.raises(ValueError, match=refusal):
        from_huggingface(masked)
    with pytest.raises(ValueError, match="decoder.0.bias, decoder.0.weight is the pixel decoder"):
        from_huggingface(masked.state_dict(), masked.config.to_dict())
    without_decoder = {k: v for k, v in masked.state_dict().items() if not k.startswith("decoder.")}
    with pytest.raises(ValueError, match="embeddings.mask_token is the mask token"):
        from_huggingface(without_decoder, masked.config.to_dict())


def test_bad_configs_are_refused():
    hf = hf_vit("seed")
    sd, config = hf.state_dict(), hf.config.to_dict()
    with pytest.raises(ValueError, match="hidden_act 'gelu_new' is not the exact GELU"):
        from_huggingface(sd, {**config, "hidden_act": "gelu_new"})
    with pytest.raises(ValueError, match="model_type 'deit' is not 'vit'"):
        from_huggingface(sd, {**config, "model_type": "deit"})
    with pytest.raises(ValueError, match=r"image_size \[32, 48\] is not square"):
        from_huggingface(sd, {**config, "image_size": [32, 48]})


def test_missing_extra_and_wrong_shaped_keys_are_named(tmp_path):
    hf = hf_vit("seed")
    hf.save_pretrained(tmp_path)
    hub, config = load_file(tmp_path / "model.safetensors"), hf.config.to_dict()
    missing = {k: v for k, v in hub.items() if k != "vit.encoder.layer.2.attention.attention.key.bias"}
    named = r"hub layout.*missing 1 key\(s\): encoder.layer.2.attention.attention.key.bias"
    with pytest.raises(StateDictMismatchError, match=named):
        from_huggingface(missing, config)
    extra = {**hf.state_dict(), "vit.layers.0.attention.extra_scale": torch.ones(48)}
    named = r"v5 layout.*unexpected 1 key\(s\): layers.0.attention.extra_scale"
    with pytest.raises(StateDictMismatchError, match=named):
        from_huggingface(extra, config)
    named = r"wrong shape for 12 key.*layers.0.mlp.fc1.bias: expected \(96,\), got \(192,\)"
    with pytest.raises(StateDictMismatchError, match=named):
        from_huggingface(hf.state_dict(), {**config, "intermediate_size": 96})
    with pytest.raises(StateDictMismatchError, match="mix the Hub layout"):
        from_huggingface({**hub, **hf.state_dict()}, config)
