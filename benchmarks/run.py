"""Benchmark suite: throughput figures with this machine's own limits measured in the same run.

    python benchmarks/run.py [--quick] [--threads 2] [--only NAME ...] --out results/benchmarks/suite.csv
    python benchmarks/run.py --device cuda [--compile] [--batch 256] --out results/benchmarks/gpu.csv

Each row: name, value, unit, reference, reference_value, ratio. The references of the compute
figures are GEMM peaks of this machine measured first in the same run (square 2048 x 2048, and
the ViT's own shapes), so a figure can be read against what the hardware does today even on a
shared, noisy machine. Every figure is the best of its repeats after a warm-up.

FLOPs of the ViT rows are analytic (``specvit.models.vit.flops_per_sample``): 2 x the
multiply-accumulates of every matrix product of the forward pass (tokenizer, q/k/v, scores,
weighted sum, projection, MLP, head), x 3 for a training step; LayerNorm, softmax, GELU and the
optimizer are not counted, so the ratio to the GEMM peak is the fraction of the machine's
matrix throughput that training achieves.

``--device cuda`` runs the GEMM peaks (8192 x 8192 there, large enough to fill a GPU) and the
ViT rows on the GPU, timed with a device synchronisation after each call; the other rows are CPU
work whatever the device (the loader then reads against the GPU's training rate).
"""
from __future__ import annotations

import argparse
import csv
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from timing import matmul_gflops, row
from vit_rates import ddp_trainer_rate, trainer_rate, vit_rows
from workloads import (
    baseline_data,
    bench_fisher,
    bench_lightgbm,
    bench_ridge,
    bench_simulate,
    bench_template,
    dag_dry_run,
    loader_rate,
    smoke_main_job_seconds,
    write_training_file,
)

FIELDS = ["name", "value", "unit", "reference", "reference_value", "ratio"]


@dataclass
class Suite:
    """One run of the suite: which rows (``only``; None: all), at which sizes (``quick``), on which
    device; ``rows`` collects the table in the order the rows are measured."""

    quick: bool
    threads: int
    only: set[str] | None
    device: torch.device
    compile_model: bool = False
    batch: int | None = None
    rows: list[dict] = field(default_factory=list)

    def want(self, name: str) -> bool:
        return self.only is None or name in self.only

    @property
    def reps(self) -> int:
        return 2 if self.quick else 3

    def add(self, *new) -> None:
        for r in new:
            self.rows.append(r)
            print(f"  {r['name']:<28} {r['value']:>12.4g} {r['unit']}", flush=True)

    def at_trainer_precision(self, vit_rows_: list[dict]) -> dict:
        """The step-rate row at the trainer's own precision: bf16 autocast on a GPU, fp32 on a CPU."""
        steps = [r for r in vit_rows_ if r["unit"] == "samples/s"]
        return next(r for r in steps if r["name"].endswith("_bf16") == (self.device.type == "cuda"))

    @property
    def fp32_steps(self) -> bool:
        """Whether the ViT rows time fp32 steps too: not for a compiled model on a GPU (whose trainer
        runs bf16), where every compilation costs a minute of a lent GPU's time."""
        return not (self.compile_model and self.device.type == "cuda")

    def peaks(self) -> dict:
        """The GEMM peaks (always measured: every compute row is read against them), and the ViT's shapes."""
        device, reps = self.device, self.reps
        # a smaller CPU product in --quick: bf16 without native CPU support takes minutes at 2048
        peak_n = 8192 if device.type == "cuda" else (1024 if self.quick else 2048)
        peak_shape = f"{peak_n}^2 @ {peak_n}^2"
        peaks = {"fp32": matmul_gflops(torch.float32, peak_n, peak_n, peak_n, reps + 2, device),
                 "bf16": matmul_gflops(torch.bfloat16, peak_n, peak_n, peak_n, reps + 2, device)}
        self.add(row("matmul_peak_fp32", peaks["fp32"], "GFLOP/s", peak_shape),
                 row("matmul_peak_bf16", peaks["bf16"], "GFLOP/s", peak_shape))
        if self.want("matmul_vit_shape"):
            shape = (16384 if self.quick else 65536, 256, 1024)
            self.add(row("matmul_vit_shape_fp32", matmul_gflops(torch.float32, *shape, reps, device), "GFLOP/s",
                         "matmul_peak_fp32", peaks["fp32"]),
                     row("matmul_vit_shape_bf16", matmul_gflops(torch.bfloat16, *shape, reps, device), "GFLOP/s",
                         "matmul_peak_bf16", peaks["bf16"]))
        return peaks

    def vit(self, peaks: dict) -> dict | None:
        """The ViT step rates and the trainer's; returns the default preset's step row (None if not run)."""
        device, reps, cuda = self.device, self.reps, self.device.type == "cuda"
        paper_batch = self.batch or (64 if self.quick else 256)
        if self.want("vit_train_paper") or (self.want("trainer") and cuda):
            paper_rows = vit_rows("vit_train_paper", "p16_h256_L6", paper_batch, reps, peaks, device,
                                  self.compile_model, self.fp32_steps)
            self.add(*paper_rows)
        default_step = None
        if self.want("vit_train_default") or self.want("loader") or self.want("trainer"):
            default_rows = vit_rows("vit_train_default", "tiny", 256, reps + 2, peaks, device, self.compile_model,
                                    self.fp32_steps)
            default_step = self.at_trainer_precision(default_rows)
            self.add(*default_rows)
        if self.want("trainer"):
            suffix = "_compiled" if self.compile_model else ""
            self.add(row(f"trainer_default{suffix}", trainer_rate("tiny", 8192 if self.quick else 32768, 256, device,
                                                                  self.compile_model),
                         "samples/s", f"{default_step['name']} (the step alone)", default_step["value"]))
            if cuda:  # hours on a CPU
                self.paper_trainer(self.at_trainer_precision(paper_rows), paper_batch, peaks)
        return default_step

    def paper_trainer(self, paper_step: dict, batch: int, peaks: dict) -> None:
        """The whole trainer on the paper ViT (GPU: resident data, bf16), against its step; its model
        FLOP utilisation against the bf16 GEMM peak; the N = 1M x 200-epoch run it projects; and, with
        two GPUs or more, its data-parallel rate on two (weak scaling: each GPU the same batch)."""
        from specvit.models.vit import ViTConfig, flops_per_sample

        name = "trainer_paper" + ("_compiled" if self.compile_model else "")
        rate = trainer_rate("p16_h256_L6", 65536, batch, self.device, self.compile_model)
        flops = flops_per_sample(ViTConfig.from_preset("p16_h256_L6", 4096), training=True)
        self.add(row(name, rate, "samples/s", f"{paper_step['name']} (the step alone)", paper_step["value"]),
                 row(f"{name}_mfu", rate * flops / 1e9, "GFLOP/s", "matmul_peak_bf16 (ratio: MFU; goal 0.40)",
                     peaks["bf16"]),
                 row(f"{name}_1M_200_hours", 1e6 * 200 / rate / 3600, "h", "N = 1M x 200 epochs; goal 2 h", 2.0))
        if torch.cuda.device_count() >= 2 and self.want("ddp"):
            self.add(row(f"{name}_ddp2", ddp_trainer_rate("p16_h256_L6", 65536, batch, 2), "samples/s",
                         f"2 x {name} (ratio: scaling efficiency)", 2 * rate))

    def workloads(self, default_step: dict | None) -> None:
        """The CPU rows: the loader (read against the default ViT's step rate), simulation, Fisher,
        template fit, baselines and the workflow's dry run."""
        quick, reps = self.quick, self.reps
        if self.want("loader"):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "train.h5"
                write_training_file(path, 4096 if quick else 20000)
                size_mb = path.stat().st_size / 2**20
                consumed = f"{default_step['name']} (samples/s consumed)"
                self.add(row("loader", loader_rate(path, 256, 2, cache_mb=1e6), "samples/s", consumed,
                             default_step["value"]),
                         row("loader_streamed", loader_rate(path, 256, 2, cache_mb=size_mb / 8), "samples/s",
                             consumed, default_step["value"]))
        if self.want("simulate"):
            self.add(row("simulate", bench_simulate(2048 if quick else 8192, reps), "spectra/s",
                         "1M spectra in 10 min", 1e6 / 600))
        if self.want("fisher"):
            self.add(row("fisher", bench_fisher(256 if quick else 1024, 9, reps), "stars/s",
                         "10k stars x 9 mags in 60 s", 1e4 / 60))
        if self.want("template_fit"):
            self.add(row("template_fit", bench_template(4 if quick else 32), "stars/s", "1,000 test stars in 10 min",
                         1000 / 600))
        if self.want("lightgbm_fit") or self.want("ridge_fit"):
            n = 5000 if quick else 20000
            x, y = baseline_data(n)
            if self.want("lightgbm_fit"):
                self.add(row("lightgbm_fit", bench_lightgbm(x, y, 20 if quick else 100, self.threads), "s",
                             f"N={n}, {20 if quick else 100} rounds, feature_fraction 0.2"))
            if self.want("ridge_fit"):
                self.add(row("ridge_fit", bench_ridge(x, y), "s", f"N={n}, closed form, float64"))
        if self.want("dag_dry_run"):
            seconds, jobs = dag_dry_run()
            self.add(row("dag_dry_run", seconds, "s", f"snakemake -n, paper config ({jobs} jobs), goal 3 s", 3.0))
        if (self.only is None and not quick) or (self.only and "cores" in self.only):  # minutes: asked for
            times, load = smoke_main_job_seconds((2, 8))
            self.add(row("smoke_main_cores2", times[2], "s", f"smoke main job, --cores 2 (load {load:.1f})"),
                     row("smoke_main_cores8", times[8], "s", "smoke_main_cores2 (ratio goal <= 1.1)", times[2]))


def run_suite(quick: bool, threads: int, only: set[str] | None, device: torch.device | None = None,
              compile_model: bool = False, batch: int | None = None) -> list[dict]:
    suite = Suite(quick, threads, only, device or torch.device("cpu"), compile_model, batch)
    suite.workloads(suite.vit(suite.peaks()))
    return suite.rows


def write_rows(rows: list[dict], out: Path) -> None:
    """The rows as CSV at ``out``, written only when the suite has finished (no partial file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        print(f"replacing the earlier figures in {out}")
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows: list[dict], threads: int, device: torch.device) -> None:
    where = torch.cuda.get_device_name(device) + ", " if device.type == "cuda" else ""
    print(f"# {where}{platform.processor() or platform.machine()}, {threads} threads, torch {torch.__version__}, "
          f"python {platform.python_version()}")
    print(f"{'name':<28} {'value':>12} {'unit':<10} {'reference':<44} {'ratio':>7}")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] != "" else ""
        print(f"{r['name']:<28} {r['value']:>12.4g} {r['unit']:<10} {str(r['reference'])[:44]:<44} {ratio:>7}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about two minutes on 2 cores")
    parser.add_argument("--threads", type=int, default=2, help="torch and LightGBM threads")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only these rows (and the GEMM peaks): matmul_vit_shape vit_train_paper "
                             "vit_train_default trainer ddp loader simulate fisher template_fit lightgbm_fit "
                             "ridge_fit dag_dry_run cores (the smoke main job at --cores 2 and 8: minutes; "
                             "not in --quick unless named)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the GEMM peaks and the ViT rows run (default cpu)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the ViTs (rows named ..._compiled)")
    parser.add_argument("--batch", type=int, help="batch size of vit_train_paper (default 64 quick, 256 full)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: this torch ({torch.__version__}, CUDA build: {torch.version.cuda}) "
                     "sees no CUDA device; run on a GPU machine, or leave --device out for the CPU suite")
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch must be a positive integer, got {args.batch}")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows = run_suite(args.quick, args.threads, set(args.only) if args.only else None, device, args.compile,
                     args.batch)
    write_rows(rows, args.out)
    print_table(rows, args.threads, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
