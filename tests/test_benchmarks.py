"""Smoke test of the CPU benchmark harness, which ships in the package (gpugrad.bench):
`python -m gpugrad bench --quick --threads default,1` (tiny sizes, 3 rounds), run from a folder
outside the checkout with no --out, writes its JSON and markdown report there with the
documented fields. No timing is asserted. It runs in a child process: the run sets thread counts
and malloc options for its process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

from gpugrad.backend import kernels
from gpugrad.bench import harness

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "gpugrad", "bench", "--quick", "--threads", "default,1"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no checkout on the path
    proc = subprocess.run(
        command, cwd=out, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (json_path,) = out.glob("bench-cpu-*-quick.json")
    (md_path,) = out.glob("bench-cpu-*-quick.md")
    return json.loads(json_path.read_text()), md_path.read_text()


def test_records_machine_threads_and_versions(report):
    doc, _ = report
    assert doc["schema"] == harness.SCHEMA
    for key in (
        "date",
        "machine",
        "numpy_blas",
        "threadpools",
        "env",
        "versions",
        "gpugrad_backend",
        "threads",
        "settings",
        "method",
        "results",
    ):
        assert key in doc, key
    assert {"platform", "cpu_model", "logical_cores"} <= set(doc["machine"])
    assert {"python", "numpy", "torch", "gpugrad"} <= set(doc["versions"])
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        assert set(doc["env"][name]) == {"set", "value"}
    default, one = doc["threads"]
    assert default["requested"] == "default" and default["gpugrad_threads"] >= 1
    assert one["requested"] == 1
    assert one["gpugrad_threads"] == one["numpy_blas_threads"] == one["torch_threads"] == 1
    assert doc["settings"]["quick"] is True


def test_every_group_has_rows_with_stats_at_each_thread_setting(report):
    doc, _ = report
    groups = {(row["group"], row.get("threads")) for row in doc["results"]}
    timed = {"mlp", "kernels", "ops", "overhead"}
    assert groups == {(g, t) for g in timed for t in ("default", 1)} | {("memory", None)}
    for row in doc["results"]:
        if row["group"] == "memory":
            assert "torch" in row["values"] and "gpugrad" in row["values"]
            continue
        assert row["repeats"] >= 1 and row["timings"]
        for stats in row["timings"].values():
            assert stats["p10"] <= stats["median"] <= stats["p90"]
        if row["group"] != "kernels":
            assert row["ratio_vs_torch"]["gpugrad"]["median"] > 0


def test_mlp_rows_have_the_gemm_roofline(report):
    doc, _ = report
    for row in doc["results"]:
        if row["group"] == "mlp":
            assert row["vs_gemm_only"]["gemm-only"] == 1.0
            assert row["vs_gemm_only"]["gpugrad"] > 0 and row["gemm_gflops"] > 0
            assert row["params"]["gemm_flops"] > 0


def test_every_fused_kernel_reports_bandwidth(report):
    doc, _ = report
    for threads in ("default", 1):
        rows = {
            r["name"]: r
            for r in doc["results"]
            if r["group"] == "kernels" and r["threads"] == threads
        }
        assert set(rows) == set(kernels.kernel_names())
        for row in rows.values():
            assert row["gbps"] > 0 and row["vs_copy"] > 0, row["name"]
            assert row["copy_gbps"]["copy"] > 0


def test_versions_compute_the_same_thing(report):
    doc, _ = report
    for row in doc["results"]:
        if row["group"] == "mlp":
            assert {"numpy-floor", "gpugrad", "gpugrad-captured", "gemm-only"} <= set(row["timings"])
            assert row["check"]["max_rel_loss_diff"] < 1e-4
            assert row["check"]["max_rel_param_diff"] < 1e-4
        elif row["group"] == "ops":
            assert row["check"]["max_rel_diff"] < 1e-4


def test_markdown_has_the_summary_and_a_table_per_group(report):
    _, text = report
    assert "## Summary" in text and "gpugrad / GEMMs, threads 1" in text
    assert "captured / torch, threads default" in text
    for group in (
        "## mlp, threads default",
        "## kernels, threads 1",
        "## ops",
        "## overhead",
        "## memory",
    ):
        assert group in text
    assert "| case | impl |" in text and "| kernel |" in text


def test_source_checkout_entry_point_writes_into_benchmarks_results():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "python -m benchmarks.run" in proc.stdout
    assert str(ROOT / "benchmarks" / "results") in "".join(proc.stdout.split())  # help wraps it


def test_settle_pauses_and_warms_before_each_sample():
    """With settle_s, each sample of one of several implementations follows a pause and one
    untimed call (the other libraries' threads go idle, this one's wake)."""
    import time

    calls = {"a": 0, "b": 0}
    fns = {name: (lambda name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls}
    settings = harness.Settings(warmup=1, repeats=3, min_sample_s=0.0, settle_s=0.01)
    started = time.perf_counter()
    measured = harness.measure(fns, settings)
    assert time.perf_counter() - started >= 6 * 0.01
    assert calls == {"a": 1 + 3 * 2, "b": 1 + 3 * 2}  # warm-up, then per round: untimed + timed
    assert measured["repeats"] == 3
