"""What cannot apply to the user's own files (data.source: hdf5) is found when the config is read,
all of it in one message that names each run group or study and the key that turns it off."""
import h5py
import numpy as np
import pytest
import yaml

from specvit.data.contract import DataContractError
from specvit.data.writer import write_split
from specvit.physics.labels import LABEL_NAMES
from specvit.pipeline.config import load_config, prepare, read_yaml
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


def plan_of(data_files, data=None, **cfg):
    config = load_config(overrides={"data": {"source": "hdf5", **data_files, "subsets": [20, 30], **(data or {})},
                                    **cfg})
    return prepare(config)


def problems(data_files, data=None, **cfg):
    with pytest.raises(ConfigError) as err:
        plan_of(data_files, data, **cfg)
    return err.value.messages


def test_metadata_is_read_without_the_arrays(files, tmp_path):
    meta = read_meta("data.train", files["logg_only"]["train"])
    assert meta.labels == ("logg",) and meta.wave.size == 16 and meta.n == 30
    assert meta.where().startswith("data.train (")
    broken = tmp_path / "broken.h5"
    broken.write_text("not hdf5")
    with pytest.raises(DataContractError, match="broken.h5: not an HDF5 file"):
        read_meta("data.train", broken)


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
    assert len(msgs) == 6, text
    # the default fine-tuning sets are larger than the 30 spectra of the training file
    assert msgs.pop(0).startswith("config key 'pretrain.n_finetune' has N=10000, more than the 30 spectra of "
                                  "data.train (")
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
    assert len(msgs) == 2, msgs
    assert msgs[0].startswith("config key 'data.test': data.test (")  # not the training grid: see below
    assert "data.test (" in msgs[1] and "data.train (" not in msgs[1], msgs
    assert "has 16 pixels, 4000.00-5000.00 Å" in msgs[1]


def test_files_of_the_forward_model_run_everything(files):
    """The built-in grid with the five labels and mag: the template, pre-training and every shift apply."""
    plan = plan_of(files["builtin"], ablations=None, pretrain={"n_finetune": [10, 20]}, runs=[
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




# ----------------------------------------------------------------------------- the user's data, checked at parse time
# The cheap half of the data contract, for every target (prepare runs before any job): each case of the
# bring-your-own-data matrix (docs/reliability.md, "Bad input") that needs no value scan. The README's
# recipe at a tenth of its size: 400 / 100 / 100 spectra of 512 pixels.

RECIPE_WAVE = np.linspace(7100.0, 8850.0, 512)
RIDGE = [{"name": "ridge", "model": "ridge", "n_train": [400]}]


def recipe_split(path, n, *, wave=RECIPE_WAVE, labels=("logg", "Teff"), seed=0):
    rng = np.random.default_rng(seed)
    write_split(path, wave, rng.uniform(0.5, 1.0, (n, wave.size)).astype(np.float32),
                np.full((n, wave.size), 0.05, np.float32),
                {k: rng.uniform(1, 5, n).astype(np.float32) for k in labels}, {"source": "user"})
    return str(path)


@pytest.fixture
def recipe(tmp_path):
    return {s: recipe_split(tmp_path / f"my_{s}.h5", n, seed=i)
            for i, (s, n) in enumerate((("train", 400), ("val", 100), ("test", 100)))}


def recipe_problems(data_files, data=None, **cfg):
    return problems(data_files, data={"subsets": [400], **(data or {})}, **{**OFF, "runs": RIDGE, **cfg})


def test_the_recipe_itself_is_a_valid_plan(recipe):
    config = load_config(overrides={"data": {"source": "hdf5", **recipe, "subsets": [400]}, **OFF, "runs": RIDGE})
    plan = prepare(config)
    assert plan.main_runs == {"ridge": "ridge-N400-s0"} and plan.user_files["train"].n == 400


def test_a_shifted_validation_grid_names_both_files_and_the_first_pixel(recipe, tmp_path):
    """The case that gave LightGBM R² 0.084 instead of 0.992 and exit 0: val on a grid 50 Å off."""
    val = recipe_split(tmp_path / "shifted_val.h5", 100, wave=RECIPE_WAVE + 50.0)
    assert recipe_problems({**recipe, "val": val}) == [
        f"config key 'data.val': data.val ({val}) and data.train ({recipe['train']}) have different wavelength "
        "grids: the first differing pixel is 0 (7150.0000 Å in data.val, 7100.0000 Å in data.train; 512 of 512 "
        "pixels differ by more than the tolerance of 0.0089 Å); expected the training file's wavelength grid in "
        "every split: resample the spectra onto one grid"]


def test_a_validation_file_of_another_length_is_named(recipe, tmp_path):
    val = recipe_split(tmp_path / "short_val.h5", 100, wave=RECIPE_WAVE[:500])
    assert recipe_problems({**recipe, "val": val}) == [
        f"config key 'data.val': data.val ({val}) has 500 pixels, 7100.00-8808.90 Å but data.train "
        f"({recipe['train']}) has 512 pixels, 7100.00-8850.00 Å; expected the training file's wavelength grid "
        "in every split: resample the spectra onto one grid"]


def test_a_grid_within_the_tolerance_is_the_same_grid(recipe, tmp_path):
    """A test file whose grid is stored as float32 (rounded by ~2e-4 Å) is on the training grid."""
    test = recipe_split(tmp_path / "f32_test.h5", 100)
    with h5py.File(test, "r+") as f:
        f["wave"][...] = f["wave"][()].astype(np.float32)
    assert not np.array_equal(read_meta("data.test", test).wave, RECIPE_WAVE)
    config = load_config(overrides={"data": {"source": "hdf5", **recipe, "test": test, "subsets": [400]}, **OFF,
                                    "runs": RIDGE})
    assert prepare(config).main_runs == {"ridge": "ridge-N400-s0"}


def test_two_run_groups_of_one_name_are_refused(recipe):
    """Two groups named alike used to leave one of them out of Table 3, silently."""
    msgs = recipe_problems(recipe, runs=[*RIDGE, {"name": "ridge", "model": "ridge", "n_train": [200]}],
                           data={"subsets": [200, 400]})
    assert msgs == ["config key 'runs[1].name' is 'ridge', the name of runs[0] too; expected unique run-group names "
                    "(each is one model of Table 3 and Figure 1)"]


def test_a_label_the_runs_predict_missing_from_the_test_file(recipe, tmp_path):
    test = recipe_split(tmp_path / "logg_only_test.h5", 100, labels=("logg",))
    msgs = recipe_problems({**recipe, "test": test}, runs=[{**RIDGE[0], "labels": ["logg", "Teff"]}])
    assert msgs == [f"run group 'ridge' (runs[0]) predicts ['logg', 'Teff']: data.test ({test}) lacks ['Teff'] "
                    "(its labels: ['logg']); remove the group from 'runs'"]


def test_more_training_spectra_asked_for_than_the_file_holds(recipe):
    msgs = recipe_problems(recipe, runs=[{**RIDGE[0], "n_train": [500]}], data={"subsets": [500]})
    assert msgs == [f"config key 'data.subsets' has N=500, more than the 400 spectra of data.train "
                    f"({recipe['train']}); expected N <= the rows of the training file"]


def test_a_directory_given_as_a_data_file(recipe, tmp_path):
    assert recipe_problems({**recipe, "train": str(tmp_path)}) == [
        f"config key 'data.train': {str(tmp_path)!r} is a directory; expected an HDF5 split file"]


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _edit(change):
    def apply(path):
        with h5py.File(path, "r+") as f:
            change(f)
    return apply


def _zero_rows(f):
    for name in ("flux", "error"):
        del f[name]
        f.create_dataset(name, shape=(0, 512), dtype=np.float32)
    for name in ("logg", "Teff"):
        del f["labels"][name]
        f["labels"].create_dataset(name, shape=(0,), dtype=np.float32)


def _shorter_error(f):
    del f["error"]
    f.create_dataset("error", data=np.full((99, 512), 0.05, np.float32))


def _complex_flux(f):
    data = f["flux"][()]
    del f["flux"]
    f["flux"] = data.astype(np.complex64)


def _repeat_wave(f):
    f["wave"][5] = f["wave"][4]


# case -> (how to break the test file, the contract's message after '<file>: ')
BROKEN_TEST_FILE = {
    "not HDF5": (lambda p: open(p, "w").write("logg,flux\n1.0,0.5\n"),
                 "not an HDF5 file (no HDF5 signature); expected an HDF5 split file"),
    "empty file": (lambda p: open(p, "wb").close(),
                   "file is empty (0 bytes); expected an HDF5 split file (was it written completely?)"),
    "truncated": (_truncate, "HDF5 file cannot be read ("),
    "no spectra": (_edit(_zero_rows), "dataset 'flux' has 0 rows; expected at least one spectrum"),
    "missing flux": (_edit(lambda f: f.__delitem__("flux")),
                     "dataset 'flux' is missing; expected real floating-point values (float16, float32 or float64; "
                     "either byte order) with 2 dimension(s)"),
    "missing error": (_edit(lambda f: f.__delitem__("error")), "dataset 'error' is missing; expected real "),
    "missing wave": (_edit(lambda f: f.__delitem__("wave")),
                     "dataset 'wave' is missing; expected real numbers (floating point of any precision, or "
                     "integers; either byte order) with 1 dimension(s)"),
    "missing labels/logg": (_edit(lambda f: (f["labels"].__delitem__("logg"), f.attrs.__delitem__("label_names"))),
                            "dataset 'labels/logg' is missing; expected [N] target labels"),
    "shapes disagree": (_edit(_shorter_error), "dataset 'error' has shape (99, 512); expected (100, 512) = [N, P] "
                                               "with P = 512, the length of dataset 'wave', N like flux"),
    "non-increasing wavelengths": (_edit(_repeat_wave), "dataset 'wave' is not strictly increasing (wave[5] = "),
    "complex flux": (_edit(_complex_flux), "dataset 'flux' is complex64 (complex numbers); expected real "
                                           "floating-point values"),
}


@pytest.mark.parametrize("case", BROKEN_TEST_FILE)
def test_a_broken_file_is_named_with_its_key_before_any_job(recipe, case):
    """Each broken file fails the config check itself (the job that would have read it never starts)."""
    breaks, message = BROKEN_TEST_FILE[case]
    breaks(recipe["test"])
    msgs = recipe_problems(recipe)
    assert len(msgs) == 1 and msgs[0].startswith(f"config key 'data.test': {recipe['test']}: {message}"), msgs


def test_every_data_problem_comes_in_one_message(recipe, tmp_path):
    val = recipe_split(tmp_path / "shifted_val.h5", 100, wave=RECIPE_WAVE + 0.5)
    BROKEN_TEST_FILE["no spectra"][0](recipe["test"])
    msgs = recipe_problems({**recipe, "val": val}, runs=[{**RIDGE[0], "n_train": [800]}],
                           data={"subsets": [800]})
    assert len(msgs) == 3, msgs
    assert msgs[0].startswith(f"config key 'data.test': {recipe['test']}: dataset 'flux' has 0 rows")
    assert msgs[1].startswith(f"config key 'data.val': data.val ({val}) and data.train ({recipe['train']}) have "
                              "different wavelength grids: the first differing pixel is 0 (7100.5000 Å")
    assert msgs[2].startswith("config key 'data.subsets' has N=800, more than the 400 spectra of data.train")


@pytest.mark.parametrize("text, where", [
    ("data:\n  source: hdf5\n   train: x.h5\n", "line 3, column 9: mapping values are not allowed here"),
    ("runs: [{name: a, model: ridge}\n", "line 2, column 1: while parsing a flow sequence expected ',' or ']', "
                                         "but got '<stream end>'"),
])
def test_invalid_yaml_names_the_file_and_line(tmp_path, text, where):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"invalid YAML:\n  - {path}, {where}"


def test_a_config_file_that_is_a_directory_or_a_list(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path} is a directory; expected a YAML config file"):
        read_yaml(tmp_path)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml holds a list; expected a mapping of config keys"):
        read_yaml(tmp_path / "list.yaml")


def test_the_config_check_command_names_what_snakemake_cannot(tmp_path, capsys):
    """Snakemake reads --configfile files before the workflow starts and says only "not valid JSON or
    YAML"; `python -m specvit.pipeline.config my.yaml` checks them as the workflow would."""
    from specvit.pipeline.config import main

    bad = tmp_path / "my.yaml"
    bad.write_text("data:\n  source: hdf5\n   train: x.h5\n")
    assert main([str(bad)]) == 1
    assert f"{bad}, line 3, column 9: mapping values are not allowed here" in capsys.readouterr().err
    good = tmp_path / "ok.yaml"
    good.write_text(yaml.safe_dump({**OFF, "runs": [{**RIDGE[0], "n_train": [2000]}]}))
    assert main([str(good)]) == 0
    assert capsys.readouterr().out.startswith("valid: 3 runs, ")  # its N = 2000 at the 3 seeds of eval.main_seeds
