"""What every case shares: the record of the machine and its threads, the alternating timer
(warm-up, then the implementations interleaved once per repetition; median and spread), and
the JSON / markdown writers. Cases hand it zero-argument callables and get statistics back."""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SCHEMA = "gpugrad-bench-cpu/2"  # 2: thread settings, gemm-only, kernels
BASELINE = "torch"
ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_THREAD_TIMEOUT",
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "MKL_NUM_THREADS",
    "GPUGRAD_KERNELS",
)


@dataclass(frozen=True)
class Settings:
    """How long to time: `repeats` fixes the count, else it comes from `budget_s`."""

    warmup: int = 3  # untimed calls of each implementation before the first sample
    budget_s: float = 6.0  # wall time per comparison, all implementations together
    min_repeats: int = 15
    max_repeats: int = 300
    min_sample_s: float = 1e-3  # a sample loops over calls until it lasts at least this
    repeats: int | None = None
    threads: int | None = None  # gpugrad, its BLAS and torch at this many; None: their defaults
    quick: bool = False  # tiny sizes (the smoke test)
    # Before each sample of one of several implementations: a pause, so that the thread pools
    # of the others go idle (OpenBLAS's spin for ~0.1 s after a call, OpenMP's for less), then
    # one untimed call: each library is timed with its own threads awake and the others' asleep,
    # as in a process of its own. Used with more than one thread (run.py sets it).
    settle_s: float = 0.0


QUICK = Settings(warmup=1, budget_s=0.0, min_repeats=3, max_repeats=3, min_sample_s=0.0, quick=True)


# ---- timing -----------------------------------------------------------------------------------
def measure(fns: dict[str, Callable[[], object]], settings: Settings) -> dict:
    """Time each callable: `warmup` calls each, then `repeats` rounds that call every one of
    them once (a sample of `inner` back-to-back calls; with settings.settle_s, after a pause and
    an untimed call), starting each round one name later so that no implementation always runs
    right after another. Returns per-name statistics of the time per call (µs) and the
    per-round samples for paired ratios."""
    names = list(fns)
    fastest = dict.fromkeys(names, math.inf)
    for _ in range(max(1, settings.warmup)):
        for name in names:
            start = time.perf_counter_ns()
            fns[name]()
            fastest[name] = min(fastest[name], (time.perf_counter_ns() - start) * 1e-9)
    inner = {
        name: max(1, math.ceil(settings.min_sample_s / max(fastest[name], 1e-9))) for name in names
    }
    settle = settings.settle_s if len(names) > 1 else 0.0
    if settings.repeats is not None:
        repeats = settings.repeats
    else:
        per_round = sum(fastest[name] * (inner[name] + bool(settle)) + settle for name in names)
        repeats = int(settings.budget_s / max(per_round, 1e-9))
        repeats = min(settings.max_repeats, max(settings.min_repeats, repeats))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, calls = fns[name], inner[name]
            if settle:
                time.sleep(settle)
                fn()
            start = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter_ns() - start) / calls / 1e3)
    timings = {name: dict(summarize(samples[name]), inner=inner[name]) for name in names}
    return {"repeats": repeats, "timings": timings, "samples": samples}


def summarize(values) -> dict:
    """Median and spread (p10/p90, quartiles) of a list of samples."""
    a = np.asarray(values, dtype=np.float64)
    p10, q1, median, q3, p90 = np.percentile(a, [10, 25, 50, 75, 90])
    return {
        "median": float(median),
        "p10": float(p10),
        "p90": float(p90),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(a.min()),
        "mean": float(a.mean()),
        "n": int(a.size),
    }


def ratios(measured: dict, baseline: str = BASELINE) -> dict:
    """name -> time ratio name/baseline: the ratio of medians, and p10/p90 of the per-round
    (paired) ratios, which drift on a busy machine cancels out of."""
    if baseline not in measured["samples"]:
        return {}
    base = np.asarray(measured["samples"][baseline])
    out = {}
    for name, values in measured["samples"].items():
        if name == baseline:
            continue
        paired = np.asarray(values) / base
        out[name] = {
            "median": measured["timings"][name]["median"] / measured["timings"][baseline]["median"],
            "paired_p10": float(np.percentile(paired, 10)),
            "paired_p90": float(np.percentile(paired, 90)),
        }
    return out


def timed_result(
    group: str, name: str, params: dict, fns: dict, settings: Settings, **extra
) -> dict:
    """Measure `fns` and package it as one result row (timings in µs per call, ratios vs torch)."""
    measured = measure(fns, settings)
    row = {
        "group": group,
        "name": name,
        "params": params,
        "unit": "us",
        "repeats": measured["repeats"],
        "timings": measured["timings"],
        "ratio_vs_torch": ratios(measured),
        "threads": "default" if settings.threads is None else settings.threads,
    }
    row.update(extra)
    return row


# ---- threads ----------------------------------------------------------------------------------
def numpy_blas(info: list[dict]) -> dict | None:
    """numpy's own BLAS among the libraries threadpoolctl found (torch loads others)."""
    blas = [lib for lib in info if lib.get("user_api") == "blas"]
    for lib in blas:
        if "numpy" in lib.get("filepath", ""):
            return lib
    return blas[0] if blas else None


class Threads:
    """The thread counts of gpugrad's kernels, numpy's BLAS and torch as this process started
    (the defaults a user gets), and `apply(n)`: all three at n, or back to those defaults
    (None), torch then matching numpy's BLAS."""

    def __init__(self, torch):
        from threadpoolctl import threadpool_info

        import gpugrad as gg

        self.torch = torch
        blas = numpy_blas(threadpool_info())
        self.gpugrad_default = gg.get_num_threads()
        self.blas_default = int(blas["num_threads"]) if blas else None
        self.torch_default = torch.get_num_threads()

    def apply(self, threads: int | None) -> dict:
        from threadpoolctl import threadpool_info, threadpool_limits

        import gpugrad as gg
        from gpugrad.backend import kernels

        if threads is not None:
            gg.set_num_threads(threads)
        else:
            native = kernels.native_cpu()
            if native is not None:
                native.set_num_threads(self.gpugrad_default)
            if self.blas_default is not None:
                threadpool_limits(limits=self.blas_default, user_api="blas")
        blas = numpy_blas(threadpool_info())
        blas_threads = int(blas["num_threads"]) if blas else None
        self.torch.set_num_threads(threads or blas_threads or self.torch_default)
        return {
            "requested": "default" if threads is None else threads,
            "gpugrad_threads": gg.get_num_threads(),
            "numpy_blas_threads": blas_threads,
            "torch_threads_default": self.torch_default,
            "torch_threads": self.torch.get_num_threads(),
        }


# ---- what the numbers were taken on -------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(torch=None) -> dict:
    """Date, machine, BLAS and thread pools, environment variables, versions, gpugrad backend."""
    from threadpoolctl import threadpool_info

    import gpugrad

    pools = threadpool_info()
    blas = numpy_blas(pools)
    keep = (
        "user_api",
        "internal_api",
        "prefix",
        "filepath",
        "version",
        "num_threads",
        "threading_layer",
        "architecture",
    )
    record = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "arch": platform.machine(),
            "cpu_model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "numpy_blas": None
        if blas is None
        else {
            "library": blas.get("internal_api"),
            "version": blas.get("version"),
            "kernel": blas.get("architecture"),
            "threads": blas.get("num_threads"),
            "threading_layer": blas.get("threading_layer"),
            "filepath": blas.get("filepath"),
        },
        "threadpools": [{k: lib.get(k) for k in keep if k in lib} for lib in pools],
        "env": {
            name: {"set": name in os.environ, "value": os.environ.get(name)} for name in ENV_VARS
        },
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "torch": None if torch is None else torch.__version__,
            "gpugrad": getattr(gpugrad, "__version__", None),
        },
        "gpugrad_backend": gpugrad.backend_info(),
        "git": git_record(),
    }
    if torch is not None:
        record["torch"] = {
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "mkl": torch.backends.mkl.is_available(),
            "mkldnn": torch.backends.mkldnn.is_available(),
        }
    return record


def git_record() -> dict | None:
    """The commit of the source checkout gpugrad runs from (None for an installed wheel)."""
    root = Path(__file__).resolve().parent.parent.parent
    if not (root / "csrc").is_dir() or not (root / "gpugrad").is_dir():
        return None
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


# ---- output -------------------------------------------------------------------------------------
def report(env: dict, settings: Settings, results: list[dict], wall_s: float) -> dict:
    return {
        "schema": SCHEMA,
        **env,
        "settings": asdict(settings),
        "method": (
            "gpugrad and torch in one process on the same numpy-made inputs; per comparison a "
            "warm-up, then rounds that run each implementation once in rotating order; "
            "time.perf_counter_ns per sample; median and p10/p90 of the time per call; "
            "ratio = median(impl) / median(torch), < 1 means faster than torch; "
            "vs_gemm_only = median(impl) / median(the step's GEMMs alone); "
            "threads 'default': gpugrad's and numpy's BLAS defaults, torch.set_num_threads = "
            "numpy's BLAS threads; threads N: gg.set_num_threads(N) and torch.set_num_threads(N); "
            "with more than one thread, each sample follows a pause of settings.settle_s (the "
            "other libraries' spinning threads go idle) and one untimed call; "
            "kernels: bytes read + written / median time, against numpy copies of the same size; "
            "gc left enabled"
        ),
        "wall_s": wall_s,
        "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "results": results,
    }


def write(doc: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write DIR/bench-cpu-<date>.json and .md; returns both paths."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    stem = f"bench-cpu-{stamp}" + ("-quick" if doc["settings"]["quick"] else "")
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md_path.write_text(markdown(doc))
    return json_path, md_path


def fmt_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} µs"


def fmt_bytes(n) -> str:
    if n is None:
        return "–"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def markdown(doc: dict) -> str:
    m, blas, env = doc["machine"], doc.get("numpy_blas") or {}, doc["env"]
    openblas = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    parts = [f"{k}={env[k]['value']}" if env[k]["set"] else f"{k} unset" for k in openblas]
    parts += [f"{k}={v['value']}" for k, v in env.items() if v["set"] and k not in openblas]
    env_text = ", ".join(parts)
    v = doc["versions"]
    machine = (
        f"- machine: {m['cpu_model']}, {m['logical_cores']} logical cores, {m['platform']}; "
        f"load average at start {m['loadavg_at_start']}, at end {doc['loadavg_at_end']}"
    )
    settings = "; ".join(
        f"threads {t['requested']}: gpugrad {t['gpugrad_threads']}, numpy BLAS "
        f"{t['numpy_blas_threads']}, torch {t['torch_threads']}"
        for t in doc.get("threads", [])
    )
    blas_line = (
        f"- numpy BLAS: {blas.get('library')} {blas.get('version')} (kernel {blas.get('kernel')}); "
        f"{settings}; {env_text}"
    )
    backend = doc["gpugrad_backend"]
    versions = (
        f"- versions: python {v['python']}, numpy {v['numpy']}, torch {v['torch']}, "
        f"gpugrad {v['gpugrad']}; backend {backend.get('cpu')} + {backend.get('cpu_kernels')}"
    )
    kind = "quick run (tiny sizes)" if doc["settings"]["quick"] else "full run"
    how = (
        f"- {kind}, {doc['wall_s']:.0f} s. Ratio = time(impl) / time(torch): < 1 means faster "
        "than torch; paired p10 – p90: spread of the per-round ratios; vs GEMMs: time / time of "
        "the step's GEMMs alone."
    )
    lines = [f"# gpugrad vs torch, CPU — {doc['date']}", "", machine, blas_line, versions, how, ""]
    lines += _summary(doc["results"])
    groups: dict[tuple, list] = {}
    for row in doc["results"]:
        groups.setdefault((row["group"], row.get("threads")), []).append(row)
    for (group, threads), rows in groups.items():
        lines += [f"## {group}" + ("" if threads is None else f", threads {threads}"), ""]
        if group == "memory":
            lines += _memory_table(rows)
        elif group == "kernels":
            lines += _kernel_table(rows)
        else:
            lines += _timing_table(rows)
        lines.append("")
    return "\n".join(lines)


def _summary(results: list[dict]) -> list[str]:
    """The headline: each MLP step per thread setting as gpugrad / torch (eager, and the library
    step under gg.capture) and as gpugrad / GEMM-only."""
    mlp = [row for row in results if row["group"] == "mlp"]
    settings = list(dict.fromkeys(row["threads"] for row in mlp))
    if not mlp:
        return []
    header = "| MLP step (float32) |" + "".join(
        f" gpugrad / torch, threads {t} | captured / torch, threads {t} |"
        f" gpugrad / GEMMs, threads {t} |"
        for t in settings
    )
    lines = ["## Summary", "", header, "|---|" + "---:|---:|---:|" * len(settings)]
    for name in dict.fromkeys(row["name"] for row in mlp):
        cells = []
        for t in settings:
            row = next((r for r in mlp if r["name"] == name and r["threads"] == t), None)
            ratios_ = row["ratio_vs_torch"] if row else {}
            roof = row and row.get("vs_gemm_only", {}).get("gpugrad")
            cells += [
                f"{ratios_[key]['median']:.2f}x" if key in ratios_ else "–"
                for key in ("gpugrad", "gpugrad-captured")
            ]
            cells.append(f"{roof:.2f}" if roof else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _kernel_table(rows: list[dict]) -> list[str]:
    lines = [
        "| kernel | elements | bytes | median | GB/s | vs copy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    copy = next((r["copy_gbps"] for r in rows if "copy_gbps" in r), {})
    for row in rows:
        if "gbps" not in row:
            lines.append(f"| {row['name']} | {'; '.join(row.get('notes', []))} | | | | |")
            continue
        t, params = row["timings"][row["name"]], row["params"]
        lines.append(
            f"| {row['name']} | {params['elements']} | {fmt_bytes(params['bytes'])} | "
            f"{fmt_time(t['median'])} | {row['gbps']:.1f} | {row['vs_copy']:.2f} |"
        )
    if copy:
        lines.append("")
        lines.append("copy bandwidth: " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in copy.items()))
    return lines


def _timing_table(rows: list[dict]) -> list[str]:
    lines = [
        "| case | impl | median | p10 – p90 | vs torch | paired p10 – p90 | vs GEMMs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        per_op = row.get("per_op")
        roof = row.get("vs_gemm_only", {})
        for impl, t in row["timings"].items():
            r = row["ratio_vs_torch"].get(impl)
            ratio = f"**{r['median']:.2f}x**" if r else "1"
            spread = f"{r['paired_p10']:.2f} – {r['paired_p90']:.2f}" if r else ""
            scale = per_op or 1
            median = fmt_time(t["median"] / scale) + (" /op" if per_op else "")
            lines.append(
                f"| {row['name']} | {impl} | {median} | "
                f"{fmt_time(t['p10'] / scale)} – {fmt_time(t['p90'] / scale)} | {ratio} | {spread} "
                f"| {f'{roof[impl]:.2f}' if impl in roof else ''} |"
            )
        lines += _note_lines(row, columns=7)
    return lines


def _note_lines(row: dict, columns: int) -> list[str]:
    """A row's notes as table lines of `columns` cells."""
    return [f"| {row['name']} | note | {note} |" + " |" * (columns - 3)
            for note in row.get("notes", [])]


def _memory_table(rows: list[dict]) -> list[str]:
    header = (
        "| case | impl | saved for backward | activations (no params) | peak RSS rise | tracemalloc peak "
        "| vs torch: saved / activations |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        for impl, v in row["values"].items():
            r = row.get("saved_ratio_vs_torch", {}).get(impl)
            ratio = "–" if r is None else " / ".join(f"{x:.4f}" if x else "–" for x in r.values())
            lines.append(
                f"| {row['name']} | {impl} | {fmt_bytes(v.get('saved_bytes'))} | "
                f"{fmt_bytes(v.get('saved_activation_bytes'))} | {fmt_bytes(v.get('peak_rss_delta'))} | "
                f"{fmt_bytes(v.get('tracemalloc_peak'))} | {ratio} |"
            )
        lines += _note_lines(row, columns=7)
    return lines
