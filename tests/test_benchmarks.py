"""Smoke test of the benchmark harness: `python -m benchmarks.run --quick` (tiny sizes, 3
rounds) writes a JSON and a markdown report with the documented fields. No timing is asserted.
It runs in a child process: the run sets thread counts and malloc options for its process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)]
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
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
    assert doc["threads"]["torch_threads"] >= 1
    assert doc["settings"]["quick"] is True


def test_every_group_has_rows_with_stats(report):
    doc, _ = report
    groups = {row["group"] for row in doc["results"]}
    assert groups == {"mlp", "ops", "overhead", "memory"}
    for row in doc["results"]:
        if row["group"] == "memory":
            assert "torch" in row["values"] and "gpugrad" in row["values"]
            continue
        assert row["repeats"] >= 1 and "torch" in row["timings"] and "gpugrad" in row["timings"]
        for stats in row["timings"].values():
            assert stats["p10"] <= stats["median"] <= stats["p90"]
        assert row["ratio_vs_torch"]["gpugrad"]["median"] > 0


def test_versions_compute_the_same_thing(report):
    doc, _ = report
    for row in doc["results"]:
        if row["group"] == "mlp":
            assert {"numpy-floor", "gpugrad"} <= set(row["timings"])
            assert row["check"]["max_rel_loss_diff"] < 1e-4
            assert row["check"]["max_rel_param_diff"] < 1e-4
        elif row["group"] == "ops":
            assert row["check"]["max_rel_diff"] < 1e-4


def test_markdown_has_a_table_per_group(report):
    _, text = report
    for group in ("## mlp", "## ops", "## overhead", "## memory"):
        assert group in text
    assert "| case | impl |" in text
