"""Memory of a training step. Bytes saved for backward: gpugrad by walking the recorded graph
from the loss (the arrays in each node's saved entries), torch by counting what
torch.autograd.graph.saved_tensors_hooks packs. Peak memory of one step: tracemalloc (NumPy
reports its allocations to it; torch's allocator does not) and the rise of the resident-set
high-water mark (VmHWM, reset through /proc/self/clear_refs), in a child process started with
glibc malloc set to serve blocks >= 64 KiB by mmap and return them at free, so that RSS
follows the live bytes (in this process earlier cases leave large free blocks in the heap)."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

from gpugrad.bench import cases_mlp
from gpugrad.bench.harness import Settings, Threads

FULL_SIZES = cases_mlp.FULL_SIZES
QUICK_SIZES = cases_mlp.QUICK_SIZES
FULL_LAYERS = [(128, 512), (512, 2048)]  # (batch, features) of the single-layer rows
QUICK_LAYERS = [(8, 32)]
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


# ---- bytes saved for backward -------------------------------------------------------------------
def _union_bytes(intervals) -> int:
    """Bytes covered by [low, high) address intervals (views of one buffer count once)."""
    total, end = 0, -1
    for low, high in sorted(intervals):
        if high <= end:
            continue
        total += high - max(low, end)
        end = high
    return total


def _np_bounds(array) -> tuple[int, int]:
    byte_bounds = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None)
    return (byte_bounds or np.byte_bounds)(array)  # numpy >= 2 moved it


def _torch_bounds(t) -> tuple[int, int]:
    if t.numel() == 0:
        return t.data_ptr(), t.data_ptr()
    span = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride())) + 1
    return t.data_ptr(), t.data_ptr() + span * t.element_size()


def _summary(entries, params) -> dict:
    """entries: (nbytes, bounds) per saved item; params: bounds of the parameters."""

    def is_param(bounds):
        return any(bounds[0] < high and low < bounds[1] for low, high in params)

    return {
        "saved_bytes": int(sum(n for n, _ in entries)),
        "saved_unique_bytes": _union_bytes(b for _, b in entries),
        "saved_activation_bytes": _union_bytes(b for _, b in entries if not is_param(b)),
        "saved_entries": len(entries),
    }


def gpugrad_saved(output, params=()) -> dict:
    """Walk the graph behind `output`: every saved array of every node, once per entry."""
    entries, by_node, seen = [], {}, set()
    stack = [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for saved in getattr(node, "_saved", None) or ():
            array = getattr(saved, "array", None)
            if array is None or not hasattr(array, "nbytes"):
                continue
            entries.append((int(array.nbytes), _np_bounds(array)))
            by_node[node.name()] = by_node.get(node.name(), 0) + int(array.nbytes)
        stack.extend(edge[0] for edge in node.next_edges if edge is not None)
    return dict(_summary(entries, [_np_bounds(p.array) for p in params]), saved_by_node=by_node)


def torch_saved(torch, make_output, params=()) -> dict:
    """Run make_output() while counting every tensor autograd packs for backward."""
    packed = []

    def pack(t):
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        output = make_output()
    entries = [(t.numel() * t.element_size(), _torch_bounds(t)) for t in packed]
    del output
    return _summary(entries, [_torch_bounds(p.detach()) for p in params])


# ---- peak memory of a step ---------------------------------------------------------
def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def step_peaks(impl) -> dict:
    """RSS high-water rise and tracemalloc peak of one step, after the warm-up steps (one; a
    captured step's also records), measured from the state between steps with the gradients
    dropped (torch keeps them until the next zero_grad): parameters and batch only, the same
    for every implementation. Free heap memory is handed back first (malloc_trim), so reusing
    it during the step shows in RSS."""
    for _ in range(getattr(impl, "warmup_steps", 1)):
        impl.step()
    impl.drop_grads()
    gc.collect()
    _malloc_trim()
    reset = _reset_hwm()
    rss_before = _status_bytes("VmRSS")
    impl.step()
    hwm = _status_bytes("VmHWM")
    impl.drop_grads()
    gc.collect()
    tracemalloc.start()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    impl.step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "peak_rss_delta": None if hwm is None or rss_before is None else hwm - rss_before,
        "hwm_reset": reset,
        "tracemalloc_peak": peak - current,
    }


def _malloc_trim() -> None:
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _child(config: dict) -> dict:
    """In the child: the peaks of every implementation on every problem."""
    import torch

    Threads(torch).apply(config["threads"])
    peaks = {}
    for sizes, batch in config["problems"]:
        params, x, y = cases_mlp.make_problem(sizes, batch)
        impls, _ = cases_mlp.implementations(torch, params, x, y, "relu")
        peaks[_key(sizes, batch)] = {name: step_peaks(impl) for name, impl in impls.items()}
        del impls
        gc.collect()
    return peaks


def child_peaks(problems, threads: int | None) -> dict:
    """Run _child in a fresh process whose malloc returns large blocks at free."""
    config = {"problems": [[list(sizes), batch] for sizes, batch in problems], "threads": threads}
    command = [sys.executable, "-m", "gpugrad.bench.cases_memory", json.dumps(config)]
    proc = subprocess.run(
        command,
        env=dict(os.environ, **CHILD_ENV),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"exit status {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- the case ----------------------------------------------------------------------------------------
def _ratios(values: dict) -> dict:
    """impl -> {saved, activations}: its bytes over torch's."""
    base = values.get("torch", {})
    out = {}
    for name, v in values.items():
        if name == "torch" or v.get("saved_bytes") is None:
            continue
        out[name] = {
            key: v[field] / base[field] if base.get(field) else None
            for key, field in (("saved", "saved_bytes"), ("activations", "saved_activation_bytes"))
        }
    return out


def _key(sizes, batch: int) -> str:
    return f"{'-'.join(map(str, sizes))} b{batch}"


def _mlp_rows(torch, problems, peaks: dict) -> list[dict]:
    rows = []
    for sizes, batch in problems:
        params, x, y = cases_mlp.make_problem(sizes, batch)
        impls, notes = cases_mlp.implementations(torch, params, x, y, "relu")
        values = {}
        for name, impl in impls.items():
            if name == "torch":
                values[name] = torch_saved(torch, impl.loss, impl.parameters())
            elif name.startswith("gpugrad"):
                values[name] = gpugrad_saved(impl.loss(), impl.parameters())
            else:
                values[name] = {}
            values[name].update(peaks.get(_key(sizes, batch), {}).get(name, {}))
        rows.append(
            {
                "group": "memory",
                "name": f"MLP step {_key(sizes, batch)} relu",
                "params": {"sizes": list(sizes), "batch": batch, "activation": "relu"},
                "values": values,
                "saved_ratio_vs_torch": _ratios(values),
                "notes": notes,
            }
        )
    return rows


def _layer_rows(torch, layers) -> list[dict]:
    rows = []
    for batch, features in layers:
        for label, values in _layer_values(torch, batch, features).items():
            rows.append(
                {
                    "group": "memory",
                    "name": f"{label} ({batch},{features})",
                    "params": {"shape": [batch, features], "what": label},
                    "values": values,
                    "saved_ratio_vs_torch": _ratios(values),
                }
            )
    return rows


def _layer_values(torch, batch: int, features: int) -> dict:
    """Single layers: the ReLU op alone (gpugrad saves a 1-bit mask), sigmoid, and a fused
    Linear+ReLU layer (gg.nn.functional.linear_act) against torch's Linear then ReLU."""
    import gpugrad as gg

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, features), dtype=np.float32)
    w = rng.uniform(-1, 1, (features, features)).astype(np.float32) / np.float32(np.sqrt(features))
    b = np.zeros(features, dtype=np.float32)
    gx, gw, gb = (gg.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    return {
        "relu op": {
            "gpugrad": gpugrad_saved(gg.relu(gx)),
            "torch": torch_saved(torch, lambda: torch.relu(tx)),
        },
        "sigmoid op": {
            "gpugrad": gpugrad_saved(gg.sigmoid(gx)),
            "torch": torch_saved(torch, lambda: torch.sigmoid(tx)),
        },
        "linear+relu layer": {
            "gpugrad": gpugrad_saved(gg.nn.functional.linear_act(gx, gw, gb, "relu"), (gw, gb)),
            "torch": torch_saved(
                torch, lambda: torch.relu(torch.nn.functional.linear(tx, tw, tb)), (tw, tb)
            ),
        },
    }


def run(torch, settings: Settings) -> list[dict]:
    problems = QUICK_SIZES if settings.quick else FULL_SIZES
    layers = QUICK_LAYERS if settings.quick else FULL_LAYERS
    try:
        peaks, failure = child_peaks(problems, settings.threads), None
    except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        peaks, failure = {}, f"peak memory not measured: {exc}"
    rows = _mlp_rows(torch, problems, peaks) + _layer_rows(torch, layers)
    if failure:
        rows[0]["notes"].append(failure)
    return rows


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
