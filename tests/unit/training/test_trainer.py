"""The trainer: schedule, losses, label scaling, checkpoints, exact resume, failure modes."""
import math
import re

import numpy as np
import pytest
import torch

from specvit.data.loader import NoisyBatches
from specvit.training.checkpoints import FRESH_STATE, resume
from specvit.training.optim import loss_fn, lr_at, make_optimizer
from specvit.training.scaling import LabelScaler
from specvit.training.trainer import RunFolder, TrainConfig, TrainingData, TrainingDiverged, train
from toy_task import Killed, P, kill_after_epoch, tiny_model, toy_data


def state_of(path):
    return torch.load(path, weights_only=False)["model"]


def test_schedule_warms_up_then_decays_to_min_lr():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-5)
    assert lr_at(0, 100, 10, cfg) == pytest.approx(1e-4)
    assert lr_at(9, 100, 10, cfg) == pytest.approx(1e-3)
    assert lr_at(10, 100, 10, cfg) == pytest.approx(1e-3)
    assert lr_at(55, 100, 10, cfg) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lr_at(100, 100, 10, cfg) == pytest.approx(1e-5)


def test_losses_against_closed_forms():
    out = torch.tensor([[0.5, 2.0, math.log(4.0), 0.0]])
    target = torch.tensor([[1.5, 2.0]])
    w = torch.ones(2)
    assert loss_fn(out[:, :2], target, TrainConfig(loss="mse"), w).item() == pytest.approx(0.5)
    assert loss_fn(out[:, :2], target, TrainConfig(loss="l1"), w).item() == pytest.approx(0.5)
    assert loss_fn(out[:, :2], target, TrainConfig(loss="huber", huber_delta=0.5), w).item() == \
        pytest.approx(0.5 * (0.5 * (1.0 - 0.25)))
    nll = 0.5 * (math.log(4.0) + 1.0 / 4.0) + 0.5 * 0.0
    assert loss_fn(out, target, TrainConfig(loss="gaussian_nll"), w).item() == pytest.approx(nll / 2)
    weighted = loss_fn(out[:, :2], target, TrainConfig(loss="mse"), torch.tensor([3.0, 1.0]))
    assert weighted.item() == pytest.approx(3 * 1.0 / 4)


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_label_scaler_round_trip(kind):
    y = np.random.default_rng(0).uniform([3750, 1], [6000, 5], size=(50, 2))
    s = LabelScaler.fit(y, kind)
    z = s.transform(y)
    if kind == "standard":
        assert np.allclose(z.mean(0), 0) and np.allclose(z.std(0), 1)
    else:
        assert np.allclose(z.min(0), 0) and np.allclose(z.max(0), 1)
    again = LabelScaler.from_dict(s.to_dict())
    assert np.allclose(again.inverse(z), y)


def test_batches_depend_only_on_seed_and_epoch():
    flux = np.ones((10, 4), np.float32)
    b = NoisyBatches(flux, np.full_like(flux, 0.1), np.arange(10.0)[:, None], 4, 1.0, seed=3)
    first = [(x.clone(), y.clone()) for x, y in b.epoch(2)]
    again = [(x.clone(), y.clone()) for x, y in b.epoch(2)]
    other = [(x.clone(), y.clone()) for x, y in b.epoch(3)]
    assert len(first) == len(b) == 3 and sum(len(y) for _, y in first) == 10
    assert all(torch.equal(a[0], c[0]) for a, c in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])
    assert float(torch.cat([x for x, _ in first]).std()) == pytest.approx(0.1, rel=0.5)


def test_training_learns_and_writes_history_and_checkpoints(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    info = train(tiny_model(), TrainConfig(epochs=10, batch_size=16, lr=3e-3), data, tmp_path,
                 log=lambda *a: None)
    import pandas as pd

    hist = pd.read_csv(tmp_path / "history.csv")
    assert list(hist.columns) == ["epoch", "steps", "train_loss", "val_r2", "val_mae", "lr", "grad_norm_median",
                                  "grad_norm_max", "epoch_seconds", "samples_per_s"]
    assert hist["epoch"].tolist() == list(range(1, 11))
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert info["best_val_r2"] == hist["val_r2"].max() > 0.5
    assert info["best_epoch"] == int(hist["epoch"][hist["val_r2"].idxmax()])
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert (hist["grad_norm_max"] >= hist["grad_norm_median"]).all()


def test_interrupted_and_resumed_run_ends_with_identical_weights(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=5)
    quiet = lambda *a: None  # noqa: E731
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    train(tiny_model(), cfg, data, tmp_path / "straight", log=quiet)

    with pytest.raises(Killed):
        train(tiny_model(), cfg, data, tmp_path / "resumed", log=kill_after_epoch(2))
    messages = []
    # a fresh process would build a freshly initialised model: resume must overwrite it
    train(tiny_model(seed=99), cfg, data, tmp_path / "resumed", log=messages.append)
    assert any("resuming" in m and "after epoch 2" in m for m in messages)
    a, b = state_of(tmp_path / "straight" / "last.pt"), state_of(tmp_path / "resumed" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "straight" / "history.csv").read_text().count("\n") == \
        (tmp_path / "resumed" / "history.csv").read_text().count("\n") == 5


def test_checkpoint_of_another_configuration_is_refused_or_discarded(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    quiet = lambda *a: None  # noqa: E731
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    train(tiny_model(), TrainConfig(epochs=1, batch_size=16), data, tmp_path, log=quiet)
    with pytest.raises(ValueError, match=r"cannot resume from .*last.pt: it was written by a different configuration"):
        train(tiny_model(), TrainConfig(epochs=2, batch_size=32), data, tmp_path, log=quiet)
    messages = []
    train(tiny_model(), TrainConfig(epochs=2, batch_size=32), data, RunFolder(tmp_path, discard_stale=True),
          log=messages.append)
    assert any("starting afresh" in m for m in messages)
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        train(tiny_model(), TrainConfig(epochs=3, batch_size=32), data, tmp_path, log=quiet)


def test_nonfinite_loss_stops_with_epoch_step_and_checkpoint(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    error = error.copy()
    error[5, 3] = np.inf  # that spectrum becomes +-inf in every epoch
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    with pytest.raises(TrainingDiverged, match=r"non-finite training loss .* at epoch 1, step \d+; "
                                               r"last good checkpoint: none yet"):
        train(tiny_model(), TrainConfig(epochs=2, batch_size=16), data, tmp_path, log=lambda *a: None)
    assert not (tmp_path / "best.pt").exists()


def test_nonfinite_loss_can_skip_the_step_and_lower_the_lr(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    error = error.copy()
    error[5, 3] = np.inf
    messages = []
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    info = train(tiny_model(), TrainConfig(epochs=1, batch_size=16, on_nonfinite="skip"), data, tmp_path,
                 log=messages.append)
    assert info["skipped_steps"] == 1
    assert any("step skipped, learning rate factor now 0.5" in m for m in messages)


def test_no_best_checkpoint_from_nan_validation(tmp_path):
    flux, error, y, x_val, y_val = toy_data()
    x_val = x_val.copy()
    x_val[:] = np.nan
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    with pytest.raises(TrainingDiverged, match="no epoch .* finite validation"):
        train(tiny_model(), TrainConfig(epochs=1, batch_size=16), data, tmp_path, log=lambda *a: None)
    assert not (tmp_path / "best.pt").exists()


def test_bad_training_settings_are_named():
    with pytest.raises(ValueError, match=r"training.loss = 'mae' is not one of"):
        TrainConfig(loss="mae")
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['epohcs'\]"):
        TrainConfig.from_dict({"epohcs": 3})


def fused_adamw_on_cpu():
    """PyTorch >= 2.4 has the fused AdamW kernel on CPU too; older versions only on GPUs."""
    try:
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)], fused=True)
    except RuntimeError:
        pytest.skip("this PyTorch has no fused AdamW on CPU")


def test_the_fused_adamw_of_gpu_runs_takes_the_default_steps():
    """make_optimizer chooses the fused AdamW for a model on a GPU; its steps equal those of the
    default implementation to float32 rounding (compared here with the fused CPU kernel)."""
    fused_adamw_on_cpu()
    plain_model, fused_model = tiny_model(seed=3), tiny_model(seed=3)
    plain = make_optimizer(plain_model, 3e-3, 0.05)
    fused = make_optimizer(fused_model, 3e-3, 0.05, fused=True)
    assert not any(g["fused"] for g in plain.param_groups)  # on CPU: the default
    assert all(g["fused"] for g in fused.param_groups)
    assert [g["weight_decay"] for g in fused.param_groups] == [0.05, 0.0]
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, y = torch.rand(8, P, generator=gen), torch.rand(8, 1, generator=gen)
        for model, opt in ((plain_model, plain), (fused_model, fused)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    a, b = plain_model.state_dict(), fused_model.state_dict()
    assert any(not torch.equal(a[k], tiny_model(seed=3).state_dict()[k]) for k in a)  # they moved
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_a_resumed_run_keeps_the_optimizer_implementation_of_its_device(tmp_path):
    """A checkpoint written on a GPU (fused AdamW) resumes on a CPU with the CPU's choice."""
    fused_adamw_on_cpu()
    model = tiny_model()
    written = make_optimizer(model, 1e-3, 0.01, fused=True)
    path = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "optimizer": written.state_dict(),
                "state": dict(FRESH_STATE, history=[]), "fingerprint": "fp"}, path)
    opt = make_optimizer(model, 1e-3, 0.01)
    resume(path, "fp", model, opt, log=lambda *a: None, discard_stale=False)
    assert not any(g["fused"] for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


def test_min_steps_raises_the_epochs_of_a_small_set_and_history_counts_the_steps(tmp_path):
    flux, error, y, x_val, y_val = toy_data(n=96)
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=3e-3, min_steps=10)      # 3 steps per epoch -> 4 epochs
    assert cfg.epochs_for(3) == 4 and cfg.epochs_for(100) == 2 and TrainConfig(epochs=2).epochs_for(3) == 2
    info = train(tiny_model(), cfg, data, tmp_path, log=lambda *_: None)
    import pandas as pd

    history = pd.read_csv(tmp_path / "history.csv")
    assert info["epochs"] == 4 and info["steps"] == 12
    assert list(history["epoch"]) == [1, 2, 3, 4] and list(history["steps"]) == [3, 6, 9, 12]
    assert history["lr"].iloc[-1] == pytest.approx(lr_at(11, 12, 3, cfg))  # the schedule spans all 4 epochs
    with pytest.raises(ValueError, match="training.min_steps = -1"):
        TrainConfig(min_steps=-1)


# ---------------------------------------------------------------- the accelerator's path, run on the CPU


def test_resident_data_resume_exactly_and_train_like_the_host_loader(tmp_path):
    """device_data: resident on the CPU runs the accelerator's path (batches drawn where the data
    are, nothing read back until an epoch ends, fused AdamW with a tensor learning rate): killed
    after epoch 2 of 3 and resumed it ends with the uninterrupted run's weights, and it trains like the
    host loader (the same batches on the CPU; the fused AdamW rounds differently)."""
    flux, error, y, x_val, y_val = toy_data()
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    resident = TrainConfig(epochs=3, batch_size=16, lr=3e-3, seed=5, device_data="resident")
    quiet = lambda *a: None  # noqa: E731
    info = train(tiny_model(), resident, data, tmp_path / "straight", log=quiet)
    assert info["data"] == "resident" and info["steps"] == 3 * 16

    with pytest.raises(Killed):
        train(tiny_model(), resident, data, tmp_path / "resumed", log=kill_after_epoch(2))
    train(tiny_model(seed=99), resident, data, tmp_path / "resumed", log=quiet)
    a, b = state_of(tmp_path / "straight" / "last.pt"), state_of(tmp_path / "resumed" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)

    host = train(tiny_model(), TrainConfig(epochs=3, batch_size=16, lr=3e-3, seed=5), data, tmp_path / "host",
                 log=quiet)
    assert host["data"] == "stream"
    c = state_of(tmp_path / "host" / "last.pt")
    assert all(torch.allclose(a[k], c[k], rtol=1e-4, atol=1e-4) for k in a)
    import pandas as pd

    h_res, h_host = pd.read_csv(tmp_path / "straight" / "history.csv"), pd.read_csv(tmp_path / "host" / "history.csv")
    assert h_res["lr"].tolist() == pytest.approx(h_host["lr"].tolist(), rel=1e-6)
    assert h_res["train_loss"].tolist() == pytest.approx(h_host["train_loss"].tolist(), rel=1e-4)
    assert h_res["grad_norm_max"].tolist() == pytest.approx(h_host["grad_norm_max"].tolist(), rel=1e-3)


@pytest.mark.parametrize("on_nonfinite", ["stop", "skip"])
def test_the_device_loop_stops_and_skips_at_the_steps_the_host_loop_does(tmp_path, on_nonfinite):
    """The non-finite check read once per epoch on the device names the same epoch and step (stop),
    or skips the same steps with the same halved learning rates (skip), as the per-step check."""
    flux, error, y, x_val, y_val = toy_data()
    error = error.copy()
    error[5, 3] = np.inf
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    outcome = {}
    for path in ("stream", "resident"):
        cfg = TrainConfig(epochs=2, batch_size=16, on_nonfinite=on_nonfinite, device_data=path)
        messages = []
        try:
            info = train(tiny_model(), cfg, data, tmp_path / path, log=messages.append)
            outcome[path] = ([m for m in messages if "non-finite" in m], info["skipped_steps"], info["steps"])
        except TrainingDiverged as exc:
            outcome[path] = str(exc)
            assert not (tmp_path / path / "best.pt").exists()
    assert outcome["stream"] == outcome["resident"]
    if on_nonfinite == "stop":
        assert re.match(r"non-finite training loss \(nan\) at epoch 1, step \d+; last good checkpoint: none yet",
                        outcome["resident"])
    else:
        skipped, n_skipped, steps = outcome["resident"]
        assert n_skipped == 2 and steps == 2 * 16 - 2
        assert skipped[-1].startswith("epoch 2 step") and skipped[-1].endswith("learning rate factor now 0.25")


def test_a_compiled_model_trains_like_the_eager_one(tmp_path):
    """training.compile: torch.compile (inductor) of the tiny preset follows the eager loss curve."""
    from specvit.models.vit import ViTConfig, build_vit

    def tiny_preset():
        torch.manual_seed(0)
        return build_vit(ViTConfig.from_preset("tiny", P))

    flux, error, y, x_val, y_val = toy_data(n=128)
    data = TrainingData(("logg",), flux, error, y, x_val, y_val)
    curves = {}
    for compiled in (False, True):
        info = train(tiny_preset(), TrainConfig(epochs=2, batch_size=32, lr=3e-3, compile=compiled), data,
                     tmp_path / str(compiled), log=lambda *a: None)
        assert info["compiled"] is compiled
        curves[compiled] = pd_history(tmp_path / str(compiled))
    assert curves[True]["train_loss"].tolist() == pytest.approx(curves[False]["train_loss"].tolist(), rel=1e-4)
    assert curves[True]["val_r2"].tolist() == pytest.approx(curves[False]["val_r2"].tolist(), abs=1e-4)


def pd_history(folder):
    import pandas as pd

    return pd.read_csv(folder / "history.csv")


def test_resident_data_must_fit_the_device_budget(monkeypatch):
    from specvit.training import device as device_module

    monkeypatch.setattr(device_module, "device_memory_bytes", lambda device: 8 * 2**30)  # an 8 GiB GPU
    gpu = torch.device("cuda", 0)
    n, p = 200_000, 4096  # flux + error: 6.1 GiB; the fixed noisy flux alone: 3.05 GiB
    assert device_module.choose_data_path(TrainConfig(), gpu, n, p) == "stream"          # over half of 8 GiB
    assert device_module.choose_data_path(TrainConfig(fresh_noise=False), gpu, n, p) == "resident"
    assert device_module.choose_data_path(TrainConfig(device_data_budget=0.8), gpu, n, p) == "resident"
    assert device_module.choose_data_path(TrainConfig(device_data="stream"), gpu, 10, p) == "stream"
    assert device_module.choose_data_path(TrainConfig(), torch.device("cpu"), 10, p) == "stream"
    with pytest.raises(ValueError, match=r"training.device_data = 'resident': the 200000 training spectra need "
                                         r"6.10 GiB on cuda:0, more than training.device_data_budget = 0.5 of its "
                                         r"8.0 GiB"):
        device_module.choose_data_path(TrainConfig(device_data="resident"), gpu, n, p)
    for bad, message in (({"device_data_budget": 0}, "training.device_data_budget = 0;"),
                         ({"device_data": "gpu"}, "training.device_data = 'gpu' is not one of"),
                         ({"devices": 0}, "training.devices = 0; expected a positive number"),
                         ({"devices": 2, "device": "cuda:1"}, "each process takes its own GPU")):
        with pytest.raises(ValueError, match=re.escape(message) if "'" not in message else message):
            TrainConfig(**bad)
