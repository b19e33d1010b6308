"""Gradient norms at initialisation of the tokenization variants."""
import numpy as np
import pandas as pd
import pytest


def test_init_gradient_norms_show_the_small_tokenizer_weights():
    """SW's 0.02 weights give tokens ~9x smaller than C1D's, and a tokenizer gradient many times larger
    (the layer norm after it divides by the token scale); with the shared lecun init they agree."""
    from specvit.models.vit import PRESETS
    from specvit.studies.init_gradients import init_gradient_table

    rng = np.random.default_rng(0)
    x = (1 + 0.1 * rng.standard_normal((32, 512))).astype(np.float32)
    y = rng.uniform(1, 5, 32)
    vit = {**PRESETS["tiny"], "patch": 16}
    variants = {f"{tok}-{init}": {**vit, "tokenizer": tok, "tokenizer_init": init}
                for tok in ("C1D", "SW") for init in ("legacy", "lecun")}
    long, table = init_gradient_table(variants, x, y, seeds=range(6))
    assert len(long) == 24 and list(table["n_seeds"]) == [6] * 4
    t = table.set_index("variant")
    assert (long["grad_norm_total"] > 0).all()
    assert t.loc["SW-legacy", "token_std_mean"] < t.loc["C1D-legacy", "token_std_mean"] / 4
    assert t.loc["SW-legacy", "grad_norm_tokenizer_mean"] > 3 * t.loc["C1D-legacy", "grad_norm_tokenizer_mean"]
    assert t.loc["SW-lecun", "token_std_mean"] == pytest.approx(t.loc["C1D-lecun", "token_std_mean"], rel=0.2)
    # same seed, same variant -> same numbers
    again, _ = init_gradient_table({"SW-legacy": variants["SW-legacy"]}, x, y, seeds=range(6))
    pd.testing.assert_frame_equal(again, long[long["variant"] == "SW-legacy"].reset_index(drop=True))
