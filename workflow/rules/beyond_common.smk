# Helpers of workflow/rules/beyond.smk: the config sections `attribution`, `pretrain`,
# `domain_shift` and `eval.external` turned into run ids, settings, seeds and targets.

from specvit.physics.labels import LABEL_NAMES
from specvit.models.vit_config import PRESETS as VIT_PRESETS
from specvit.training.spec import RunSpec

# The shift names are the schema's keys of `domain_shift.severities` (a test keeps them equal to
# specvit.studies.shifts.SHIFTS); read from the config, so parsing the workflow does not import torch.
SHIFTS = tuple(config["domain_shift"]["severities"])

# Seeds of this file's random streams, apart from those in common.smk.
BEYOND_SEED_OFFSETS = {"finetune_subsets": 101, "shift": 102, "shift_finetune": 103}


def beyond_seed(name):
    return config["seed"] + BEYOND_SEED_OFFSETS[name]


def _first_group_run(model):
    """The main (largest-N) run of the first run group of ``model``, or None."""
    for group in config["runs"]:
        if group["model"] == model:
            return MAIN_RUNS[group["name"]]
    return None


def attribution_run():
    """The ViT run to attribute: `attribution.run`, or the first ViT group's largest-N run."""
    rid = config["attribution"]["run"]
    if rid is None:
        return _first_group_run("vit")
    if rid not in RUNS or RUNS[rid].model != "vit":
        vits = sorted(r for r, s in RUNS.items() if s.model == "vit")
        raise ValueError(f"config key 'attribution.run': {rid!r} is not a ViT run of this config; ViT runs: {vits}")
    return rid


def shift_models():
    """{group name: main run id} of the models tested under shift (`domain_shift.models`, or the
    first ViT and the first LightGBM group)."""
    names = config["domain_shift"]["models"]
    if names is None:
        return {RUNS[r].group: r for r in (_first_group_run("vit"), _first_group_run("lightgbm")) if r}
    unknown = [n for n in names if n not in MAIN_RUNS]
    if unknown:
        raise ValueError(f"config key 'domain_shift.models': {unknown} are not run groups; groups: {sorted(MAIN_RUNS)}")
    return {n: MAIN_RUNS[n] for n in names}


def shift_vit():
    """(group, run id) of the ViT fine-tuned on shifted data: the first ViT among the shift models."""
    for name, rid in shift_models().items():
        if RUNS[rid].model == "vit":
            return name, rid
    return None, None


def pretrain_n():
    n = config["pretrain"]["n_pretrain"]
    if n is None:
        return max(config["data"]["subsets"])
    if n not in config["data"]["subsets"]:
        raise ValueError(f"config key 'pretrain.n_pretrain' = {n} is not in 'data.subsets' {sorted(config['data']['subsets'])}")
    return n


def pretrain_vit():
    cfg = config["pretrain"]
    if cfg["preset"] not in VIT_PRESETS:
        raise ValueError(f"config key 'pretrain.preset': unknown preset {cfg['preset']!r}; known: {sorted(VIT_PRESETS)}")
    return {**VIT_PRESETS[cfg["preset"]], **(cfg["vit"] or {})}


def pretrain_train(setting, seed):
    """Trainer settings: `training` with the study's overrides; fine-tune and scratch runs share
    `small_train` (the same budget), the fine-tune its own learning rate."""
    cfg = config["pretrain"]
    over = cfg["pretrain_train"] if setting == "pretrained" else cfg["small_train"]
    lr = {"lr": cfg["finetune_lr"]} if setting == "finetune" else {}
    return {**config["training"], **(over or {}), **lr, "seed": int(seed)}


def shift_finetune_train():
    """Trainer settings of the short fine-tune on shifted data: the ViT run's, with the study's epochs and lr."""
    ft = config["domain_shift"]["finetune"]
    return {**RUNS[SHIFT_VIT_RUN].train, "epochs": ft["epochs"], "lr": ft["lr"]}


# The studies' training jobs as the run specs they train, for their cluster sizing (cluster.smk).


def pretrain_spec(setting, n, seed):
    """The pre-training (all five labels), a fine-tune or a scratch run (log g)."""
    labels = tuple(LABEL_NAMES) if setting == "pretrained" else ("logg",)
    return RunSpec(f"pretrain-{setting}-N{n}-s{seed}", f"pretrain-{setting}", "vit", int(n), int(seed),
                   labels=labels, vit=pretrain_vit(), train=pretrain_train(setting, seed))


def shift_finetune_spec(shift):
    """The fine-tune of the ViT inside a shift's job (its evaluations are small beside it)."""
    n = config["domain_shift"]["finetune"]["n_train"]
    return RunSpec(f"shift-{shift}-finetune-N{n}-s0", f"shift-{shift}-finetune", "vit", int(n), 0,
                   vit=RUNS[SHIFT_VIT_RUN].vit, train=shift_finetune_train())


def check_beyond_config():
    msgs = []
    ds = config["domain_shift"]
    if is_synthetic():
        pool = config["data"]["n_train_pool"]
        for key, values in (("pretrain.n_finetune", config["pretrain"]["n_finetune"]),
                            ("domain_shift.finetune.n_train", [ds["finetune"]["n_train"]])):
            if max(values) > pool:
                msgs.append(f"config key '{key}' has N={max(values)}, more than 'data.n_train_pool'={pool}")
    for path in config["eval"]["external"]:
        if not Path(path).is_file():
            msgs.append(f"config key 'eval.external': file {path!r} does not exist")
    if msgs:
        raise ValueError("invalid config:\n  - " + "\n  - ".join(msgs))


check_beyond_config()
ATTRIBUTION_RUN = attribution_run()
SHIFT_MODELS = shift_models()
SHIFT_VIT, SHIFT_VIT_RUN = shift_vit()
PRETRAIN_N = pretrain_n()
PRETRAIN_SEED = config["pretrain"]["seeds"][0]
PRETRAIN_DIR = "results/beyond/pretrain/pretrained"
SMALL_RUNS = [(setting, int(n), int(seed)) for setting in ("finetune", "scratch")
              for n in config["pretrain"]["n_finetune"] for seed in config["pretrain"]["seeds"]]


def small_run_dir(setting, n, seed):
    return f"results/beyond/pretrain/{setting}-N{n}-s{seed}"


def beyond_targets():
    """Tables and figures of the studies whose `enabled` is true."""
    out = []
    if ATTRIBUTION_RUN and config["attribution"]["enabled"]:
        out += [f"results/tables/attribution_lines.{ext}" for ext in ("csv", "md", "tex")]
        out += [f"results/figures/{stem}.{ext}" for stem in ("fig_attribution", "fig_attention_heads")
                for ext in ("pdf", "png")]
    if config["pretrain"]["enabled"]:
        out += [f"results/tables/pretrain_finetune.{ext}" for ext in ("csv", "md", "tex")]
        out += [f"results/figures/fig_pretrain_finetune.{ext}" for ext in ("pdf", "png")]
    if SHIFT_MODELS and config["domain_shift"]["enabled"]:
        out += [f"results/tables/domain_shift.{ext}" for ext in ("csv", "md", "tex")]
        out += [f"results/figures/fig_domain_shift.{ext}" for ext in ("pdf", "png")]
    return out


def _finetune_inputs(w):
    out = {"train": data_path("train"), "val": data_path("val"), "test": data_path("test")}
    if w.setting == "finetune":
        out["init"] = f"{PRETRAIN_DIR}/model/model.json"
    return out


def _shift_inputs(w):
    out = {"test": data_path("test"), "models": [f"results/runs/{r}/model/model.json" for r in SHIFT_MODELS.values()]}
    if SHIFT_VIT_RUN:
        out.update(train=data_path("train"), val=data_path("val"), vit=f"results/runs/{SHIFT_VIT_RUN}/model/model.json")
    return out
