"""How the two tokenizers are initialised, and what token layer norm does to their scale."""
import numpy as np
import pytest


def test_legacy_init_draws_the_two_tokenizers_at_different_scales():
    """legacy: SW's Linear gets the ViT's trunc-normal(0.02), C1D's Conv1d PyTorch's U(±1/sqrt(patch));
    lecun (default): both std 1/sqrt(patch)."""
    import torch

    from specvit.models.vit import ViTConfig, build_vit

    cfg = ViTConfig(n_pixels=1024, patch=16, dim=256, depth=1, heads=8, mlp_dim=16)
    torch.manual_seed(0)
    std = {(tok, init): build_vit(cfg.replace(tokenizer=tok, tokenizer_init=init)).tokenizer.proj.weight.std().item()
           for tok in ("C1D", "SW") for init in ("legacy", "lecun")}
    assert std["SW", "legacy"] == pytest.approx(0.02 * 0.8796, rel=0.05)      # N(0, 0.02) cut at ±2σ
    assert std["C1D", "legacy"] == pytest.approx(1 / np.sqrt(3 * 16), rel=0.05)  # uniform ±1/sqrt(16)
    assert std["SW", "lecun"] == pytest.approx(0.25, rel=0.05) and std["C1D", "lecun"] == pytest.approx(0.25, rel=0.05)
    with pytest.raises(ValueError, match="tokenizer_init='xavier' is not one of 'lecun', 'legacy'"):
        cfg.replace(tokenizer_init="xavier")


@pytest.mark.parametrize("tokenizer", ["C1D", "SW"])
def test_token_layernorm_makes_the_model_blind_to_the_tokenizer_scale(tokenizer):
    """token_norm='layernorm' normalises each token before the positions are added, so scaling the
    tokenizer's weights and bias by c > 0 (what the legacy init does to SW) changes nothing; without
    it the output moves."""
    import torch

    from specvit.models.vit import ViTConfig, build_vit

    x = torch.from_numpy((1 + 0.1 * np.random.default_rng(0).standard_normal((4, 512))).astype(np.float32))
    for token_norm, same in (("layernorm", True), ("none", False)):
        cfg = ViTConfig(n_pixels=512, tokenizer=tokenizer, patch=32, dim=32, depth=2, heads=2, mlp_dim=64,
                        token_norm=token_norm)
        torch.manual_seed(0)
        model = build_vit(cfg).eval()
        with torch.no_grad():
            model.tokenizer.proj.bias.normal_(std=0.1)
            before = model(x)
            for p in model.tokenizer.proj.parameters():
                p.mul_(1 / 7.0)
            after = model(x)
        assert torch.allclose(before, after, atol=1e-4) == same, token_norm
    with pytest.raises(ValueError, match="token_norm='batchnorm' is not one of 'none', 'layernorm'"):
        cfg.replace(token_norm="batchnorm")
