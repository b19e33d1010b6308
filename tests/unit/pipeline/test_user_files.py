"""What cannot apply to the user's own files (data.source: hdf5) is found when the config is read,
all of it in one message that names each run group or study and the key that turns it off."""
import numpy as np
import pytest

from specvit.data.writer import write_split
from specvit.physics.labels import LABEL_NAMES
from specvit.pipeline.config import load_config, prepare
from specvit.pipeline.errors import ConfigError
from specvit.pipeline.userfiles import builtin_wave, read_meta

FIVE = list(LABEL_NAMES)
OFF = {"attribution": {"enabled": False}, "pretrain": {"enabled": False}, "domain_shift": {"enabled": False},
       "ablations": None}


def user_split(path, n, labels, wave):
    """A tiny split file in the data contract with the given labels (and `mag` where listed)."""
    rng = np.random.default_rng(len(labels))
    values = {k: rng.uniform(20.5, 22.5, n) if k == "mag" else rng.uniform(1, 5, n) for k in labels}
    write_split(path, wave, rng.uniform(0.5, 1.0, (n, wave.size)).astype(np.float32),
                np.full((n, wave.size), 0.05, np.float32), {k: v.astype(np.float32) for k, v in values.items()},
                {"source": "user"})
    return str(path)


@pytest.fixture
def files(tmp_path):
    """{kind: {split: path}}: files on another grid with log g only, and on the built-in grid with
    the five labels and mag."""
    other = np.linspace(4000.0, 5000.0, 16)
    return {"logg_only": {s: user_split(tmp_path / f"small_{s}.h5", 30, ["logg"], other)
                          for s in ("train", "val", "test")},
            "builtin": {s: user_split(tmp_path / f"full_{s}.h5", 30, [*FIVE, "mag"], builtin_wave())
                        for s in ("train", "val", "test")}}


def plan_of(data_files, **cfg):
    config = load_config(overrides={"data": {"source": "hdf5", **data_files, "subsets": [20, 30]}, **cfg})
    return prepare(config)


def problems(data_files, **cfg):
    with pytest.raises(ConfigError) as err:
        plan_of(data_files, **cfg)
    return err.value.messages


def test_metadata_is_read_without_the_arrays(files, tmp_path):
    meta = read_meta("data.train", files["logg_only"]["train"])
    assert meta.labels == ("logg",) and meta.wave.size == 16 and meta.where().startswith("data.train (")
    broken = tmp_path / "broken.h5"
    broken.write_text("not hdf5")
    assert read_meta("data.train", broken) is None  # left to the validate_split job's message


def test_the_default_studies_and_groups_on_log_g_only_files_are_all_named_at_once(files):
    """The default config (ViT, LightGBM, Ridge, template; all studies and ablations) on files of
    another grid with log g only: every group and study that cannot run, in one message."""
    msgs = problems(files["logg_only"], runs=[
        {"name": "vit", "model": "vit", "preset": "tiny", "n_train": [30]},
        {"name": "lgb", "model": "lightgbm", "n_train": [30]},
        {"name": "template", "model": "template", "n_train": [30]},
        {"name": "teff", "model": "ridge", "labels": ["Teff", "logg"], "n_train": [30]}],
        ablations={"multitask": {"n_train": 30, "variants": [
            {"name": "logg", "labels": ["logg"]}, {"name": "mh", "labels": ["M_H"]}]}, "tokenization": None,
                   "pe": None, "loss_norm": None, "robustness": None})
    text = "\n".join(msgs)
    assert len(msgs) == 5, text
    assert msgs[0].startswith("run group 'template' (runs[2]) predicts ['logg']: the template fit needs the forward "
                              "model's grid (4096 pixels, 7100.21-8849.79 Å), but data.train (")
    assert "has 16 pixels, 4000.00-5000.00 Å" in msgs[0] and msgs[0].endswith("; remove the group from 'runs'")
    assert msgs[1].startswith("run group 'teff' (runs[3]) predicts ['Teff', 'logg']: data.train (")
    assert "lacks ['Teff'] (its labels: ['logg'])" in msgs[1]
    assert msgs[2].startswith("run group 'abl-multitask-mh' (ablations.multitask) predicts ['M_H']")
    assert msgs[2].endswith("turn the ablation off with 'ablations: {multitask: null}'")
    assert msgs[3].startswith("the pre-train -> fine-tune study pre-trains on the five labels")
    assert msgs[3].endswith("turn it off with 'pretrain.enabled: false'")
    assert msgs[4].startswith("the domain-shift study's shifts ['lsf', 'loggf'] regenerate the spectra")
    assert "lacks ['Teff', 'M_H', 'a_M', 'C_M', 'mag']" in msgs[4]
    assert msgs[4].endswith("turn it off with 'domain_shift.enabled: false'")
    # the fine-tuned ViT shifts the train and val files too
    assert all(f"data.{s} (" in msgs[4] for s in ("train", "val", "test"))


def test_turning_off_what_cannot_apply_leaves_a_valid_plan(files):
    """The keys the message names are enough; attribution of a ViT needs nothing of the files."""
    plan = plan_of(files["logg_only"], **{**OFF, "attribution": {"enabled": True}}, runs=[
        {"name": "vit", "model": "vit", "preset": "tiny", "n_train": [30]},
        {"name": "ridge", "model": "ridge", "n_train": [20, 30]}])
    assert plan.studies.attribution_run == "vit-N30-s0"
    assert "results/tables/attribution_lines.csv" in plan.all_targets()


def test_only_the_domain_shift_without_a_vit_shifts_the_test_file_alone(files):
    mixed = {**files["builtin"], "test": files["logg_only"]["test"]}
    msgs = problems(mixed, **{**OFF, "domain_shift": {"enabled": True}},
                    runs=[{"name": "lgb", "model": "lightgbm", "n_train": [30]}])
    assert len(msgs) == 1 and "data.test (" in msgs[0] and "data.train (" not in msgs[0], msgs
    assert "has 16 pixels, 4000.00-5000.00 Å" in msgs[0]


def test_files_of_the_forward_model_run_everything(files):
    """The built-in grid with the five labels and mag: the template, pre-training and every shift apply."""
    plan = plan_of(files["builtin"], ablations=None, runs=[
        {"name": "vit", "model": "vit", "preset": "tiny", "n_train": [30]},
        {"name": "lgb", "model": "lightgbm", "n_train": [30]},
        {"name": "template", "model": "template", "labels": FIVE, "n_train": [30]}])
    assert plan.studies.shift_vit_run == "vit-N30-s0" and plan.studies.pretrain_n == 30
    targets = plan.all_targets()
    for table in ("attribution_lines", "pretrain_finetune", "domain_shift"):
        assert f"results/tables/{table}.csv" in targets


def test_forward_shifts_at_severity_zero_only_regenerate_nothing(files):
    plan = plan_of(files["logg_only"], **{**OFF, "domain_shift": {"enabled": True, "severities": {
        "lsf": [0.0], "loggf": [0.0]}}}, runs=[{"name": "lgb", "model": "lightgbm", "n_train": [30]}])
    assert plan.studies.shift_models == {"lgb": "lgb-N30-s0"}


def test_external_files_must_be_on_the_training_grid(files):
    msgs = problems(files["builtin"], **OFF, runs=[{"name": "lgb", "model": "lightgbm", "n_train": [30]}],
                    eval={"external": [files["logg_only"]["test"]]})
    assert msgs == [f"config key 'eval.external': {files['logg_only']['test']} has a wavelength grid of 16 pixels, "
                    "4000.00-5000.00 Å; expected the training grid of 4096 pixels, 7100.21-8849.79 Å: resample it "
                    "first"]


def test_unreadable_user_files_are_left_to_their_job(files, tmp_path):
    broken = tmp_path / "broken_train.h5"
    broken.write_bytes(b"")
    plan = plan_of({**files["builtin"], "train": str(broken)}, **OFF,
                   runs=[{"name": "template", "model": "template", "n_train": [30]}])
    assert "template" in plan.main_runs
