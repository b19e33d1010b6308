"""Unit tests of the SpecViT model (tiny shapes, CPU)."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from specvit.models import PRESETS, SpecViT, ViTConfig, build_vit, count_parameters, flops_per_sample
from specvit.models.positional import (
    apply_rope,
    pipe_encoding,
    rope_cos_sin,
    sinusoidal_index_encoding,
    token_wavelengths,
)

P = 256
WAVE = 7100.0 + 0.427 * np.arange(P)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; with 2 threads on 2 busy cores every parallel region
    can wait a scheduler tick for the other thread (steps measured 16x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_cfg(**kw):
    base = dict(n_pixels=P, patch=16, dim=16, depth=2, heads=2, mlp_dim=32)
    return ViTConfig(**{**base, **kw})


HEADS = {"single": dict(), "multi": dict(labels=("Teff", "logg", "M_H")),
         "sigma": dict(labels=("Teff", "logg"), predict_sigma=True)}


@pytest.mark.parametrize("tokenizer,pe,pooling,head", list(itertools.product(
    ["C1D", "SW"], ["none", "learned", "sinusoidal", "pipe", "rope"], ["cls", "mean"], HEADS)))
def test_output_shapes(tokenizer, pe, pooling, head):
    cfg = tiny_cfg(tokenizer=tokenizer, pos_encoding=pe, pooling=pooling, stride=8, **HEADS[head])
    model = build_vit(cfg, wave=WAVE)
    out = model(torch.randn(3, P))
    k = len(cfg.labels)
    assert out.shape == (3, cfg.n_outputs) == (3, k * (2 if cfg.predict_sigma else 1))
    mean, log_var = model.split_output(out)
    assert mean.shape == (3, k)
    assert (log_var is None) == (not cfg.predict_sigma)
    maps = model.attention_maps(torch.randn(2, P))
    assert len(maps) == cfg.depth
    assert maps[0].shape == (2, cfg.heads, cfg.seq_len, cfg.seq_len)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, cfg.heads, cfg.seq_len))


def test_explicit_attention_matches_sdpa():
    cfg = tiny_cfg(pos_encoding="rope")
    model = build_vit(cfg).eval()
    attn = model.blocks[0].attn
    x = torch.randn(2, cfg.seq_len, cfg.dim)
    rope = (model.rope_cos, model.rope_sin)
    _, _, v = attn._qkv(x, rope)
    y = (attn.weights(x, rope) @ v).transpose(1, 2).reshape(2, cfg.seq_len, cfg.dim)
    torch.testing.assert_close(attn.proj(y), attn(x, rope), atol=1e-5, rtol=1e-5)


def test_uncovered_pixel_count_is_edge_padded():
    cfg = ViTConfig(n_pixels=250, patch=16, stride=8, dim=16, heads=2, depth=1, mlp_dim=16)
    L = cfg.padded_length
    assert L >= 250 and (L - 16) % 8 == 0 and L - 8 < 250  # smallest such L
    assert cfg.n_tokens == (L - cfg.patch) // cfg.step + 1 == 31
    for tok in ("C1D", "SW"):
        model = build_vit(cfg.replace(tokenizer=tok), wave=WAVE[:250])
        assert model(torch.randn(4, 250)).shape == (4, 1)
        assert model.tokenizer(model.pad(torch.randn(4, 250))).shape == (4, cfg.n_tokens, cfg.dim)
    flux = torch.randn(2, 250)
    padded = model.pad(flux)
    assert torch.equal(padded[:, :250], flux)
    assert torch.equal(padded[:, 250:], flux[:, -1:].expand(2, L - 250))
    with pytest.raises(ValueError, match="flux"):
        model(torch.randn(2, 256))
    # exact coverage: no padding; a spectrum shorter than one patch becomes one token
    assert ViTConfig(n_pixels=256, patch=16).n_pad == 0
    assert ViTConfig(n_pixels=10, patch=16, dim=16, heads=2).n_tokens == 1


def test_token_wavelengths_extrapolate_padding():
    cfg = ViTConfig(n_pixels=250, patch=16, stride=8, dim=16, heads=2)
    lam = token_wavelengths(WAVE[:250], cfg)
    assert lam.shape == (cfg.n_tokens,)
    # the last token (pixels 240..255) reaches 6 px into the linearly extrapolated grid
    expected = 7100.0 + 0.427 * (8 * np.arange(cfg.n_tokens) + 7.5)
    np.testing.assert_allclose(lam, expected, rtol=0, atol=1e-8)


def test_sw_equals_c1d_with_same_weights():
    cfg = tiny_cfg(tokenizer="C1D", pos_encoding="learned")
    c1d = build_vit(cfg)
    sw = build_vit(cfg.replace(tokenizer="SW"))
    state = c1d.state_dict()
    state["tokenizer.proj.weight"] = state["tokenizer.proj.weight"].reshape(cfg.dim, cfg.patch)
    sw.load_state_dict(state)
    x = torch.randn(5, P)
    torch.testing.assert_close(sw(x), c1d(x), atol=1e-6, rtol=0)


def test_tokenizers_share_init_distribution():
    torch.manual_seed(0)
    cfg = ViTConfig(n_pixels=4096, patch=16, dim=256, depth=1, heads=8, mlp_dim=16)
    w_c = build_vit(cfg).tokenizer.proj.weight
    w_s = build_vit(cfg.replace(tokenizer="SW")).tokenizer.proj.weight
    assert abs(w_c.std().item() - w_s.std().item()) < 0.01
    assert abs(w_c.std().item() - 1 / 4) < 0.01


def test_rope_depends_only_on_relative_position():
    torch.manual_seed(0)
    d = 16
    q, k = torch.randn(d), torch.randn(d)
    cos, sin = rope_cos_sin(torch.arange(64), d)

    def score(m, n):
        return apply_rope(q, cos[m], sin[m]) @ apply_rope(k, cos[n], sin[n])

    for m, n, s in [(3, 10, 5), (0, 0, 40), (20, 7, 13), (1, 2, 50)]:
        torch.testing.assert_close(score(m, n), score(m + s, n + s), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(score(3, 10), score(3, 11))
    # a rotation keeps norms
    torch.testing.assert_close(apply_rope(q, cos[7], sin[7]).norm(), q.norm())


def test_fixed_encodings_differ_between_tokens_and_pipe_follows_wave():
    cfg = tiny_cfg(pos_encoding="pipe")
    for pe in (sinusoidal_index_encoding(cfg.n_tokens, cfg.dim), pipe_encoding(WAVE, cfg)):
        assert pe.shape == (cfg.n_tokens, cfg.dim)
        dist = torch.cdist(pe, pe) + torch.eye(cfg.n_tokens)
        assert dist.min() > 1e-3
    for other in (WAVE + 300.0, np.geomspace(WAVE[0], WAVE[-1] * 1.1, P)):
        assert not torch.allclose(pipe_encoding(other, cfg), pipe_encoding(WAVE, cfg), atol=1e-3)
    assert build_vit(cfg, wave=WAVE).fixed_pe.shape == (1, cfg.n_tokens, cfg.dim)
    with pytest.raises(ValueError, match="pipe"):
        SpecViT(cfg)
    with pytest.raises(ValueError, match="wave"):
        SpecViT(cfg, wave=WAVE[:100])


def test_tiny_model_overfits_tiny_batch():
    torch.manual_seed(0)
    model = build_vit(tiny_cfg(labels=("a", "b")))
    x, y = torch.randn(16, P), torch.randn(16, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = nn.functional.mse_loss(model(x), y).item()
    for _ in range(300):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-2 * start


@pytest.mark.parametrize("field,value", [("tokenizer", "CNN"), ("pos_encoding", "alibi"),
                                         ("pooling", "max")])
def test_bad_names_raise(field, value):
    with pytest.raises(ValueError, match=field) as err:
        tiny_cfg(**{field: value})
    assert value in str(err.value)


@pytest.mark.parametrize("kw,field", [
    (dict(dim=18, heads=4), "dim"), (dict(dim=6, heads=2, pos_encoding="rope"), "rope"),
    (dict(patch=0), "patch"), (dict(stride=0), "stride"), (dict(stride=17), "stride"),
    (dict(labels=()), "labels"), (dict(dropout=1.0), "dropout"), (dict(n_pixels=0), "n_pixels")])
def test_invalid_sizes_raise(kw, field):
    with pytest.raises(ValueError, match=field):
        tiny_cfg(**kw)


def test_config_round_trip_and_presets():
    cfg = tiny_cfg(tokenizer="SW", stride=8, pos_encoding="rope", labels=["Teff", "logg"],
                   predict_sigma=True, dropout=0.1)
    assert cfg.labels == ("Teff", "logg")
    d = cfg.to_dict()
    assert d["labels"] == ["Teff", "logg"]
    assert ViTConfig.from_dict(d) == cfg
    assert type(ViTConfig(n_pixels=np.int64(300)).to_dict()["n_pixels"]) is int
    with pytest.raises(ValueError, match="unknown ViTConfig field"):
        ViTConfig.from_dict({**d, "width": 3})
    paper = ViTConfig.from_preset("p16_h256_L6", 4096)
    assert (paper.patch, paper.dim, paper.depth, paper.n_tokens) == (16, 256, 6, 256)
    tiny = ViTConfig.from_preset("tiny", 4096, labels=("logg", "Teff"))
    assert tiny.n_tokens == 64 and tiny.labels == ("logg", "Teff")
    assert count_parameters(build_vit(tiny)) <= 100_000
    with pytest.raises(ValueError, match="tiny"):
        ViTConfig.from_preset("huge", 4096)
    assert set(PRESETS) >= {"p16_h256_L6", "tiny"}


@pytest.mark.parametrize("pe", ["learned", "rope", "none"])
def test_bf16_autocast_cpu(pe):
    model = build_vit(tiny_cfg(pos_encoding=pe, predict_sigma=True))
    x = torch.randn(4, P)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        assert model.embed(x).dtype == torch.float32  # residual stream stays fp32
        out = model(x)
        out.float().sum().backward()
    assert out.shape == (4, 2) and torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    torch.testing.assert_close(out.float(), model(x), atol=0.1, rtol=0.1)


def _hook_flops(model, cfg):
    """2 x MACs of every Linear/Conv1d (forward hooks) plus the attention matmuls, for batch 1."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Linear):
            total[0] += 2 * inp[0].numel() * m.out_features
        else:  # Conv1d: every output element is a dot product of in_channels x kernel
            total[0] += 2 * out.numel() * m.in_channels * m.kernel_size[0]

    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.randn(1, cfg.n_pixels))
    S = cfg.seq_len
    return total[0] + cfg.depth * 2 * (2 * cfg.heads * S * S * cfg.head_dim)


@pytest.mark.parametrize("kw", [dict(), dict(tokenizer="SW", stride=8, pooling="mean"),
                                dict(labels=("a", "b"), predict_sigma=True)])
def test_flops_match_hook_count_and_scale_with_depth(kw):
    cfg = tiny_cfg(**kw)
    assert flops_per_sample(cfg) == _hook_flops(build_vit(cfg), cfg)
    assert flops_per_sample(cfg, training=True) == 3 * flops_per_sample(cfg)
    f = [flops_per_sample(cfg.replace(depth=d)) for d in (1, 2, 4, 8)]
    assert f[0] > 0 and all(np.diff(f) > 0)
    per_layer = np.diff(f) / np.diff([1, 2, 4, 8])
    np.testing.assert_allclose(per_layer, per_layer[0])  # affine in depth
    assert f[3] / f[0] > 0.8 * 8 / (1 + 1)  # the blocks dominate


@pytest.mark.parametrize("overrides", [
    {},
    {"tokenizer": "SW", "patch": 32, "stride": 16},
    {"pooling": "mean", "pos_encoding": "none"},
    {"pos_encoding": "sinusoidal", "labels": ("Teff", "logg", "M_H"), "predict_sigma": True},
    {"pos_encoding": "pipe", "patch": 64},
    {"pos_encoding": "rope", "dim": 64, "heads": 4, "mlp_dim": 96, "depth": 3},
    {"token_norm": "layernorm"},
])
def test_closed_form_parameter_count_matches_the_model(overrides):
    from specvit.models.vit import n_parameters

    cfg = ViTConfig.from_dict({**PRESETS["small"], "n_pixels": 1000, **overrides})
    model = SpecViT(cfg, wave=np.linspace(7100.0, 8850.0, 1000))
    assert n_parameters(cfg) == count_parameters(model)
