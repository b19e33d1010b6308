"""Ablations: declaration -> runs (unit tests), and the five tables and figures built by Snakemake on
config/smoke.yaml, checked against numbers recomputed from the run folders."""
import copy
import json
import re

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake
from specvit.ablations import KINDS, expand_ablations

SMOKE = REPO / "config" / "smoke.yaml"
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
TRAINING = DEFAULT["training"]


def declared(**changes):
    pe = {"base": {"model": "vit", "preset": "tiny", "train": {"lr": 0.001, "epochs": 3}},
          "n_train": 200, "seeds": [0, 1],
          "variants": [{"name": "none", "vit": {"pos_encoding": "none"}},
                       {"name": "rope", "vit": {"pos_encoding": "rope"}, "train": {"epochs": 5}}]}
    pe.update(changes)
    return {"pe": pe}


# ----------------------------------------------------------------------------- declaration -> runs


def test_variants_expand_into_readable_runs_with_merged_overrides():
    specs = expand_ablations(declared(), TRAINING, subsets=[200, 400])["pe"]
    assert list(specs) == ["abl-pe-none-N200-s0", "abl-pe-none-N200-s1", "abl-pe-rope-N200-s0", "abl-pe-rope-N200-s1"]
    rope = specs["abl-pe-rope-N200-s1"]
    assert rope.group == "abl-pe-rope" and rope.seed == 1 and rope.n_train == 200
    assert rope.vit["pos_encoding"] == "rope" and rope.vit["patch"] == 64       # preset kept, field overridden
    assert rope.train["epochs"] == 5 and rope.train["lr"] == 0.001              # train merged key by key
    assert rope.train["batch_size"] == TRAINING["batch_size"] and rope.train["seed"] == 1
    assert specs["abl-pe-none-N200-s0"].train["epochs"] == 3
    # same declaration -> same runs (ids and specs are stable)
    assert expand_ablations(declared(), TRAINING, subsets=[200]) == {"pe": specs}


def test_training_noise_level_of_a_vit_variant_reaches_the_trainer():
    decl = {"robustness": {"base": {"model": "vit", "preset": "tiny"}, "n_train": 200, "seeds": [0],
                           "test_noise": [1.0, 2.0],
                           "variants": [{"name": "n2", "noise_level": 2.0}, {"name": "n1"},
                                        {"name": "lgb", "model": "lightgbm", "noise_level": 0.5}]}}
    specs = expand_ablations(decl, TRAINING)["robustness"]
    assert specs["abl-robustness-n2-N200-s0"].noise_level == 2.0
    assert specs["abl-robustness-n2-N200-s0"].train["noise_level"] == 2.0
    assert "noise_level" not in specs["abl-robustness-n1-N200-s0"].train  # default: spec unchanged
    assert specs["abl-robustness-lgb-N200-s0"].model == "lightgbm" and specs["abl-robustness-lgb-N200-s0"].train == {}


@pytest.mark.parametrize("decl,message", [
    ({"pos": declared()["pe"]}, "config key 'ablations.pos': unknown ablation 'pos'"),
    (declared(variants=[{"name": "x", "vit": {"pos_encoding": "none"}, "optimizer": "sgd"}]),
     "config key 'ablations.pe.variants[0]' (x): unknown variant field(s) ['optimizer']"),
    (declared(variants=[{"name": "x", "vit": {"pos_encodings": "none"}}]), "unknown ViTConfig field(s) ['pos_encodings']"),
    (declared(variants=[{"name": "x"}, {"name": "x"}]), "variant name 'x' is declared twice"),
    (declared(variants=[]), "config key 'ablations.pe.variants' is empty"),
    (declared(n_train=300), "config key 'ablations.pe.n_train' = 300 is not in 'data.subsets' [200, 400]"),
])
def test_bad_declarations_fail_with_the_config_key(decl, message):
    with pytest.raises(ValueError) as err:
        expand_ablations(decl, TRAINING, subsets=[200, 400])
    assert message in str(err.value)


def test_a_disabled_ablation_has_no_runs():
    assert expand_ablations({"pe": None, **declared()}, TRAINING) .keys() == {"pe"}
    assert expand_ablations({"pe": None}, TRAINING) == {}
    assert expand_ablations(None, TRAINING) == {}


# ----------------------------------------------------------------------------- the workflow

TABLE_COLUMNS = {
    "tokenization": ["tokenizer", "patch", "stride", "n_seeds", "r2_mean", "r2_std", "mae_mean", "grad_norm_median",
                     "diverged"],
    "pe": ["pos_encoding", "n_seeds", "r2_mean", "r2_std", "mae_mean"],
    "loss_norm": ["loss", "label_norm", "n_seeds", "r2_mean", "r2_std", "mae_mean"],
    "multitask": ["label", "setting", "r2_mean", "r2_std", "mae_mean"],
    "robustness": ["train_noise", "test_noise", "model", "r2_mean", "r2_std"],
}


def smoke_ablations():
    """The ablations of the smoke config as Snakemake sees them (smoke merged over the default)."""
    from snakemake.utils import update_config

    cfg = copy.deepcopy(DEFAULT)
    update_config(cfg, yaml.safe_load(SMOKE.read_text()))
    return expand_ablations(cfg["ablations"], cfg["training"], cfg["data"]["subsets"])


def targets():
    return ([f"results/tables/{k.table}.{ext}" for k in KINDS.values() for ext in ("csv", "md", "tex")]
            + [f"results/figures/{k.figure}.{ext}" for k in KINDS.values() for ext in ("pdf", "png")])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("ablations")
    r = run_snakemake(work, *targets(), "--cores", "2", "--configfile", SMOKE, timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:]
    return work


def r2(t, p):
    t, p = np.asarray(t, float), np.asarray(p, float)
    return 1 - np.sum((p - t) ** 2) / np.sum((t - t.mean()) ** 2)


def recomputed(work, specs, label="logg"):
    """{group: [R² of each seed]} from the runs' pooled predictions, read with h5py."""
    out = {}
    for rid, spec in specs.items():
        with h5py.File(work / f"results/runs/{rid}/predictions_pooled.h5") as f:
            out.setdefault(spec.group, []).append((r2(f[f"true/{label}"][()], f[f"pred/{label}"][()]),
                                                   np.mean(np.abs(f[f"pred/{label}"][()] - f[f"true/{label}"][()]))))
    return out


@pytest.mark.workflow
def test_all_five_targets_are_built_with_the_issue_columns(built):
    for t in targets():
        assert (built / t).stat().st_size > 0, t
    for name, cols in TABLE_COLUMNS.items():
        table = pd.read_csv(built / f"results/tables/{KINDS[name].table}.csv")
        assert set(cols) <= set(table.columns), (name, list(table.columns))
    again = run_snakemake(built, *targets(), "-n", "--configfile", SMOKE)
    assert "Nothing to be done" in again.stdout, again.stdout


@pytest.mark.workflow
@pytest.mark.parametrize("name,key", [("pe", "pos_encoding"), ("loss_norm", "variant"), ("tokenization", "variant")])
def test_table_equals_numbers_recomputed_from_the_run_folders(built, name, key):
    specs = smoke_ablations()[name]
    table = pd.read_csv(built / f"results/tables/{KINDS[name].table}.csv")
    per_group = recomputed(built, specs)
    variants = [v["name"] for v in yaml.safe_load(SMOKE.read_text())["ablations"][name].get("variants", [])] \
        or [v["name"] for v in DEFAULT["ablations"][name]["variants"]]
    assert list(table["variant"]) == variants  # declaration order
    for variant, row in zip(variants, table.itertuples()):
        values = np.array(per_group[f"abl-{name}-{variant}"])
        assert row.n_seeds == len(values) == 2
        assert row.r2_mean == pytest.approx(values[:, 0].mean(), abs=1e-9)
        assert row.r2_std == pytest.approx(values[:, 0].std(ddof=1), abs=1e-9)
        assert row.mae_mean == pytest.approx(values[:, 1].mean(), abs=1e-6)
    if name == "tokenization":
        for variant, row in zip(variants, table.itertuples()):
            runs = [rid for rid, s in specs.items() if s.group == f"abl-tokenization-{variant}"]
            norms = np.concatenate([pd.read_csv(built / f"results/runs/{rid}/history.csv")["grad_norm_median"]
                                    for rid in runs])
            assert row.grad_norm_median == pytest.approx(np.median([np.median(
                pd.read_csv(built / f"results/runs/{rid}/history.csv")["grad_norm_median"]) for rid in runs]))
            assert np.all(norms > 0)
            fits = [json.loads((built / f"results/runs/{rid}/metrics.json").read_text())["fit"] for rid in runs]
            assert row.diverged == sum(f["skipped_steps"] > 0 for f in fits)
            assert row.failed == sum(f["skipped_steps"] > 0 or f["best_val_r2"] <= 0 for f in fits)
        sw = table.set_index("variant").loc["sw-p64-s32"]
        assert (sw.tokenizer, sw.patch, sw.stride) == ("SW", 64, 32)


@pytest.mark.workflow
def test_multitask_table_has_every_label_of_every_setting(built):
    specs = smoke_ablations()["multitask"]
    table = pd.read_csv(built / "results/tables/multitask.csv")
    for (label, setting), row in table.set_index(["label", "setting"]).iterrows():
        runs = [rid for rid, s in specs.items() if s.group == f"abl-multitask-{setting}"]
        values = list(recomputed(built, {rid: specs[rid] for rid in runs}, label).values())[0]
        assert row.r2_mean == pytest.approx(np.mean([v[0] for v in values]), abs=1e-9)
    assert sorted(table[table["setting"] == "teff-logg-mh"]["label"]) == ["M_H", "Teff", "logg"]
    assert list(table[table["setting"] == "logg"]["label"]) == ["logg"]
    assert list(table[table["setting"] == "teff"]["label"]) == ["Teff"]
    # a run that does not predict log g is scored by its own label (metrics_test.csv, as runs.csv)
    rid = next(r for r, s in specs.items() if s.group == "abl-multitask-teff")
    pooled = pd.read_csv(built / f"results/runs/{rid}/metrics_test.csv").query("view == 'pooled'").iloc[0]
    (r2, mae), = list(recomputed(built, {rid: specs[rid]}, "Teff").values())[0]
    assert pooled["r2"] == pytest.approx(r2, abs=1e-9) and pooled["mae"] == pytest.approx(mae, abs=1e-6)


@pytest.mark.workflow
def test_robustness_matrix_agrees_with_the_standard_evaluation(built):
    """At test noise 1.0 the cross-noise evaluation sees exactly the pooled test spectra of
    evaluate_run, so the matrix's R² there equals the mean of the runs' metrics_test.csv."""
    specs = smoke_ablations()["robustness"]
    table = pd.read_csv(built / "results/tables/robustness_matrix.csv")
    assert sorted(table["test_noise"].unique()) == [0.5, 1.0, 2.0]
    for row in table[table["test_noise"] == 1.0].itertuples():
        runs = [rid for rid, s in specs.items() if s.model == row.model and s.noise_level == row.train_noise]
        pooled = [pd.read_csv(built / f"results/runs/{rid}/metrics_test.csv").query("view == 'pooled'")["r2"].iloc[0]
                  for rid in runs]
        assert len(runs) == row.n_seeds == 2
        assert row.r2_mean == pytest.approx(np.mean(pooled), abs=1e-9)
    lgb = table[table["model"] == "lightgbm"].groupby("test_noise")["r2_mean"].mean()
    assert lgb[0.5] > lgb[2.0]  # more test noise, less R²


@pytest.mark.workflow
def test_dry_run_of_one_table_lists_only_that_ablations_runs(tmp_path):
    r = run_snakemake(tmp_path, "results/tables/ablation_pe.csv", "-n", "--configfile", SMOKE)
    assert r.returncode == 0, r.stdout
    runs = set(re.findall(r"results/runs/([\w.-]+?)/metrics\.json", r.stdout))
    assert runs == set(smoke_ablations()["pe"]) and len(runs) == 10


@pytest.mark.parametrize("ablations,message", [
    ({"pe": {"variants": [{"name": "x", "optimiser": "sgd"}]}},
     "config key 'ablations.pe.variants[0].optimiser' is not allowed"),
    ({"tokenisation": {"base": {"model": "vit"}, "n_train": 200, "variants": [{"name": "x"}]}},
     "config key 'ablations.tokenisation' is not allowed (allowed: loss_norm, multitask, pe, robustness, tokenization)"),
    ({"pe": {"n_train": 123}}, "config key 'ablations.pe.n_train' = 123 is not in 'data.subsets'"),
])
@pytest.mark.workflow
def test_workflow_refuses_bad_ablation_config(tmp_path, ablations, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"ablations": ablations}))
    r = run_snakemake(tmp_path, "-n", "--configfile", SMOKE, cfg)
    assert r.returncode != 0 and message in r.stdout, r.stdout


# ----------------------------------------------------------------------------- tokenizer inits


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


def test_init_gradient_norms_show_the_small_tokenizer_weights():
    """SW's 0.02 weights give tokens ~9x smaller than C1D's, and a tokenizer gradient many times larger
    (the layer norm after it divides by the token scale); with the shared lecun init they agree."""
    from specvit.init_gradients import init_gradient_table
    from specvit.models.vit import PRESETS

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


def test_cross_noise_metrics_scale_one_fixed_draw(tmp_path):
    """metrics_at_noise_levels on a fitted Ridge: one row per level and label; at level 1 the numbers
    of evaluate.predict_views' pooled view; R² falls as the test noise grows."""
    from specvit.cross_noise import metrics_at_noise_levels
    from specvit.data import write_split
    from specvit.evaluate import metrics_table, predict_views, read_predictions
    from specvit.models.baselines import RidgeRegressor

    rng = np.random.default_rng(1)
    n, p = 300, 32
    logg = rng.uniform(1, 5, n).astype(np.float32)
    flux = (1 + 0.05 * np.outer(logg, np.linspace(-1, 1, p))).astype(np.float32)
    error = np.full((n, p), 0.05, np.float32)
    path = tmp_path / "test.h5"
    write_split(path, np.linspace(4000.0, 5000.0, p), flux, error, {"logg": logg}, {"source": "hdf5"})
    model = RidgeRegressor(labels=("logg",))
    model.fit((flux[:200] + error[:200] * rng.standard_normal((200, p))).astype(np.float32), {"logg": logg[:200]})
    table = metrics_at_noise_levels(model, path, [0.5, 1.0, 2.0], seed=3, n_boot=20)
    assert list(table["test_noise"]) == [0.5, 1.0, 2.0] and set(table["label"]) == {"logg"}
    assert table["r2"].is_monotonic_decreasing
    pooled = read_predictions(predict_views(model, path, noise_level=1.0, seed=3, out_dir=tmp_path, views=("pooled",))["pooled"])
    ref = metrics_table(pooled, by=None, n_boot=20, seed=3)
    assert table.loc[1, "r2"] == pytest.approx(ref["r2"].iloc[0], abs=1e-12)
    assert table.loc[1, "r2_lo"] == pytest.approx(ref["r2_lo"].iloc[0], abs=1e-12)
    with pytest.raises(ValueError, match="test noise levels .* repeat"):
        metrics_at_noise_levels(model, path, [1.0, 1.0], seed=3)
