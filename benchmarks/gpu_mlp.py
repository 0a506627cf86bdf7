"""One MLP training step (forward + cross-entropy + backward + SGD with momentum) on the GPU,
gpugrad against torch in the same process: same sizes, float32, ReLU, the same initial weights
and batch. The two alternate step by step after a warm-up; each step is timed with its
library's CUDA events (and wall-clock, both after a device synchronize); medians count. Peak
memory of one step: gpugrad's live CuPy-pool bytes (a memory hook) and pool used/total bytes,
against torch.cuda.max_memory_allocated. Writes JSON (--out) and a markdown summary
(--summary) that also tabulates gpu_kernels.json when --kernels-json names one; every result
row names the GPU, driver, CUDA, CuPy and torch versions (gpu_env.py). Without a usable GPU it
prints why, writes {"skipped": true, ...} and exits 0.

    python benchmarks/gpu_mlp.py --out gpu-results/gpu_mlp.json --summary gpu-results/gpu_summary.md
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback

import numpy as np

# run as a script (scripts/gpu_check.sh) its folder is on sys.path; shared helpers live there
from gpu_env import one_line, versions
from gpu_kernels import cuda_unavailable_reason, run_header, write_json

SCHEMA = "gpugrad.gpu_mlp/1"
CONFIGS = [  # (name, layer sizes, batch, timed repeats)
    ("784-512-512-10", (784, 512, 512, 10), 128, 30),
    ("4096-4096-4096-10", (4096, 4096, 4096, 10), 1024, 15),
    ("8192-8192-8192-10", (8192, 8192, 8192, 10), 1024, 8),
]
LR, MOMENTUM = 0.01, 0.9
DEVICE = "cuda"  # gpugrad's device (the harness's own dry runs swap in "cpu")


# ---- the four steps ------------------------------------------------------------------------------
# Each variant trains its own copy of the same initial weights on the same batch, and each takes
# the same number of steps before its loss is read, so their losses agree unless a path is wrong:
#   gpugrad          eager: Python runs every op of the step, one kernel launch each
#   gpugrad_captured gg.capture(step): recorded once into a CUDA graph, replayed by one launch
#   torch            eager torch autograd
#   torch_graph      the same step captured whole with torch.cuda.graph (torch's recipe: warm-up
#                    on a side stream, grads set to None, forward + backward + SGD in the graph)
VARIANTS = ("gpugrad", "gpugrad_captured", "torch", "torch_graph")
PREPARE_STEPS = 4  # steps every variant has taken before the timed warm-up (graph set-up inside)


def torch_model(torch, sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def gpugrad_step_with_nn(gg, sizes, torch_net):
    """gg.nn.MLP + gg.optim.SGD, loaded with torch's initial weights (same state_dict keys)."""
    model = gg.nn.MLP(list(sizes), activation="relu", device=DEVICE)
    state = {key: value.detach().cpu().numpy() for key, value in torch_net.state_dict().items()}
    model.load_state_dict(state)
    optimizer = gg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    cross_entropy = gg.nn.functional.cross_entropy

    def step(x, y):
        optimizer.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step, "gg.nn.MLP + gg.optim.SGD"


def gpugrad_step_by_hand(gg, sizes, torch_net):
    """linear_act layers on gg tensors and kernels.sgd_step: no gg.nn / gg.optim needed."""
    from gpugrad.backend import kernels

    F = gg.nn.functional
    linears = [m for m in torch_net if hasattr(m, "weight")]
    params = []
    for layer in linears:
        w = gg.tensor(layer.weight.detach().cpu().numpy(), device=DEVICE, requires_grad=True)
        b = gg.tensor(layer.bias.detach().cpu().numpy(), device=DEVICE, requires_grad=True)
        params.append((w, b))
    buffers = {}

    def step(x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = F.linear_act(h, w, b, "relu" if i < len(params) - 1 else "identity")
        loss = F.cross_entropy(h, y)
        loss.backward()
        for p in (t for pair in params for t in pair):
            first = id(p) not in buffers
            if first:
                buffers[id(p)] = p.array.copy()
            kernels.sgd_step(p.array, p.grad.array, buffers[id(p)],
                             kernels.sgd_hyper(LR, MOMENTUM, 0.0, 0.0, False, first))
            p.grad = None
        return loss

    return step, "by hand: linear_act + kernels.sgd_step"


def gpugrad_step(gg, sizes, torch_net, x, y):
    """The gg.nn path when gg.nn.MLP and gg.optim.SGD exist and work, else the hand-built one.
    Returns (step(x, y), how it was built, notes); the step has run once."""
    notes = []
    if hasattr(gg.nn, "MLP") and hasattr(gg, "optim") and hasattr(gg.optim, "SGD"):
        try:
            step, how = gpugrad_step_with_nn(gg, sizes, torch_net)
            step(x, y)  # the first step doubles as the check that this path runs
            return step, how, notes
        except Exception as exc:  # noqa: BLE001 - fall back, and say why
            notes.append(f"gg.nn path failed, built by hand: {type(exc).__name__}: {exc}")
    else:
        notes.append("gg.nn.MLP or gg.optim.SGD missing: built by hand")
    step, how = gpugrad_step_by_hand(gg, sizes, torch_net)
    step(x, y)
    return step, how, notes


class Variant:
    """One way to run the step: `run()` takes one step and returns the loss tensor; `steps`
    counts the steps taken; `library` names whose CUDA events time it."""

    def __init__(self, name, library, run, how, steps):
        self.name, self.library, self.run, self.how, self.steps = name, library, run, how, steps

    def __call__(self):
        self.steps += 1
        return self.run()

    def prepare(self):
        while self.steps < PREPARE_STEPS:
            self()


def gpugrad_variants(gg, sizes, net, x, y, notes) -> list:
    step, how, more = gpugrad_step(gg, sizes, net, x, y)
    notes.extend(more)
    variants = [Variant("gpugrad", "gpugrad", lambda: step(x, y), how, 1)]
    if not hasattr(gg, "capture"):
        notes.append("gg.capture missing: no captured row")
        return variants
    step2, how2, _ = gpugrad_step(gg, sizes, net, x, y)
    captured = gg.capture(step2)  # warm-up (eager), record, then replays: all real steps
    variants.append(Variant("gpugrad_captured", "gpugrad", lambda: captured(x, y),
                            f"gg.capture({how2})", 1))
    variants[-1].captured = captured
    return variants


def torch_variants(torch, net, x_host, y_host) -> list:
    import copy

    tx, ty = torch.from_numpy(x_host).cuda(), torch.from_numpy(y_host).cuda()
    tnet = copy.deepcopy(net).cuda()
    topt = torch.optim.SGD(tnet.parameters(), lr=LR, momentum=MOMENTUM)
    cross_entropy = torch.nn.functional.cross_entropy

    def eager():
        topt.zero_grad(set_to_none=True)
        loss = cross_entropy(tnet(tx), ty)
        loss.backward()
        topt.step()
        return loss

    variants = [Variant("torch", "torch", eager, "torch.nn.Sequential + torch.optim.SGD", 0)]

    gnet = copy.deepcopy(net).cuda()
    gopt = torch.optim.SGD(gnet.parameters(), lr=LR, momentum=MOMENTUM)
    static_x, static_y = tx.clone(), ty.clone()

    def graph_step():
        loss = cross_entropy(gnet(static_x), static_y)
        loss.backward()
        gopt.step()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up steps off the default stream, as torch's docs do
        for _ in range(PREPARE_STEPS - 1):
            gopt.zero_grad(set_to_none=True)
            graph_step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    gopt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):  # captured, not run: no step taken here
        static_loss = graph_step()

    def replay():
        static_x.copy_(tx)  # what a loop feeding new batches pays too
        static_y.copy_(ty)
        graph.replay()
        return static_loss

    variants.append(Variant("torch_graph", "torch", replay, "torch.cuda.graph(whole step)",
                            PREPARE_STEPS - 1))
    return variants


# ---- timing and memory ---------------------------------------------------------------------------
def time_gpugrad(cp, step):
    cp.cuda.runtime.deviceSynchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    wall = time.perf_counter()
    start.record()
    loss = step()
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end), (time.perf_counter() - wall) * 1e3, loss


def time_torch(torch, step):
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    wall = time.perf_counter()
    start.record()
    loss = step()
    end.record()
    end.synchronize()
    return start.elapsed_time(end), (time.perf_counter() - wall) * 1e3, loss


def gpugrad_peak_bytes(cp, step) -> dict:
    """Live CuPy-pool bytes at their highest during one step (a MemoryHook counts them)."""
    pool = cp.get_default_memory_pool()
    cp.cuda.runtime.deviceSynchronize()
    before = pool.used_bytes()

    class PeakHook(cp.cuda.MemoryHook):
        name = "gpugrad_peak"

        def __init__(self):
            super().__init__()
            self.live = self.peak = before

        def malloc_postprocess(self, **kwargs):
            self.live += kwargs["mem_size"]
            self.peak = max(self.peak, self.live)

        def free_postprocess(self, **kwargs):
            self.live -= kwargs["mem_size"]

    hook = PeakHook()
    with hook:
        step()
        cp.cuda.runtime.deviceSynchronize()
    return {"pool_used_before": before, "peak_live_bytes": hook.peak,
            "pool_used_after": pool.used_bytes(), "pool_total_after": pool.total_bytes()}


def graph_pool_bytes(variant) -> int | None:
    """Bytes held by the private memory pools of a gg.capture'd step's CUDA graphs."""
    records = getattr(getattr(variant, "captured", None), "records", {})
    pools = [r.pool for r in records.values() if hasattr(r, "pool")]
    return sum(p.total_bytes() for p in pools) if pools else None


def torch_peak_bytes(torch, step) -> dict:
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return {"allocated_before": before, "max_memory_allocated": torch.cuda.max_memory_allocated(),
            "memory_reserved": torch.cuda.memory_reserved()}


def median(values):
    return statistics.median(values) if values else None


def run_config(cp, gg, torch, name, sizes, batch, repeats, warmup) -> dict:
    row = {"name": name, "sizes": list(sizes), "batch": batch, "dtype": "float32",
           "activation": "relu", "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
           "repeats": repeats, "warmup": warmup, "prepare_steps": PREPARE_STEPS}
    params = sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 1))
    need = 4 * 3 * 4 * params + 16 * 4 * batch * max(sizes)  # 4 variants: p, grad, momentum
    free, _ = cp.cuda.runtime.memGetInfo()
    row.update(parameters=params, estimated_bytes=need, device_free_bytes=free)
    if need > 0.8 * free:
        row["skipped"] = f"needs about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"
        return row

    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y_host = rng.integers(0, sizes[-1], batch).astype(np.int64)
    if torch is None:
        raise RuntimeError("torch is needed (a CPU build will do): its Linear layers make the "
                           "initial weights every variant starts from")
    torch.manual_seed(0)
    net = torch_model(torch, sizes)  # on the CPU: the source of every variant's initial weights
    x, y = gg.tensor(x_host, device=DEVICE), gg.tensor(y_host, device=DEVICE)
    notes: list = []
    variants = gpugrad_variants(gg, sizes, net, x, y, notes)
    row["notes"] = notes
    if torch is not None and torch.cuda.is_available():
        try:
            variants += torch_variants(torch, net, x_host, y_host)
        except Exception as exc:  # noqa: BLE001 - gpugrad's rows still count
            traceback.print_exc()
            row["torch_error"] = f"{type(exc).__name__}: {exc}"
    else:
        row["torch_skipped"] = "torch with CUDA is not available"

    for v in variants:
        v.prepare()
    for _ in range(warmup):
        for v in variants:
            v()
    times = {v.name: ([], []) for v in variants}
    last = {}
    for _ in range(repeats):  # alternating, so drift hits all alike
        for v in variants:
            timer = time_gpugrad if v.library == "gpugrad" else time_torch
            ms, wall, last[v.name] = timer(cp if v.library == "gpugrad" else torch, v)
            times[v.name][0].append(ms)
            times[v.name][1].append(wall)
    for v in variants:
        ms, wall = times[v.name]
        row[v.name] = {"model": v.how, "median_ms": median(ms), "min_ms": min(ms),
                       "median_wall_ms": median(wall), "steps": v.steps,
                       "loss_after": float(last[v.name].item())}
    row["gpugrad_model"] = row["gpugrad"]["model"]
    for v in variants:  # memory last: each of these takes one more step
        if v.library == "gpugrad":
            row[v.name]["memory"] = gpugrad_peak_bytes(cp, v)
            row[v.name]["memory"]["graph_pool_bytes"] = graph_pool_bytes(v)
        else:
            row[v.name]["memory"] = torch_peak_bytes(torch, v)
    if "gpugrad_captured" in row:
        stats = variants[1].captured.stats
        row["gpugrad_captured"]["capture_stats"] = dict(stats)
        if stats["recorded"] != 1:
            row["notes"].append(f"gg.capture recorded {stats['recorded']} times (expected 1)")
    if "torch" in row:
        # same weights, batch and step count: the losses agree unless a GPU path is wrong
        reference = row["torch"]["loss_after"]
        for v in variants:
            row[v.name]["loss_relative_difference"] = (
                abs(row[v.name]["loss_after"] - reference) / max(abs(reference), 1e-12))
        row["ratio_gpugrad_over_torch"] = row["gpugrad"]["median_ms"] / row["torch"]["median_ms"]
        row["wall_ratio_gpugrad_over_torch"] = (row["gpugrad"]["median_wall_ms"]
                                                / row["torch"]["median_wall_ms"])
        row["peak_memory_ratio"] = (row["gpugrad"]["memory"]["peak_live_bytes"]
                                    / row["torch"]["memory"]["max_memory_allocated"])
        for v in variants:
            row[v.name]["ratio_to_torch"] = row[v.name]["median_ms"] / row["torch"]["median_ms"]
            if "torch_graph" in row:
                row[v.name]["ratio_to_torch_graph"] = (row[v.name]["median_ms"]
                                                       / row["torch_graph"]["median_ms"])
    return row


# ---- the markdown summary ------------------------------------------------------------------------
def _mb(value) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def _num(value, fmt="{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def summary_markdown(doc: dict, kernels_doc: dict | None) -> str:
    env = doc.get("versions")
    rehearsal = "REHEARSAL (fake GPU, timings mean nothing): " if env and env["rehearsal"] else ""
    lines = [f"# {rehearsal}gpugrad on {doc.get('device', '?')} ({doc['date']})", ""]
    if env:
        lines += [one_line(env), ""]
    if doc.get("skipped"):
        lines += [f"MLP benchmark skipped: {doc.get('reason')}", ""]
    else:
        lines += [
            f"backend: {doc.get('backend_info')}", "",
            "## MLP training step (forward + backward + SGD momentum), float32, vs torch", "",
            "Every variant trains its own copy of the same weights on the same batch for the "
            "same number of steps: the loss column checks they agree.", "",
            "| model | batch | variant | ms (CUDA events) | / torch | / torch graph | wall ms | "
            "peak MiB | graph pool MiB | loss after | how |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in doc.get("results", []):
            if "skipped" in r or "error" in r:
                lines.append(f"| {r['name']} | {r['batch']} | {r.get('skipped') or r.get('error')} "
                             "| | | | | | | | |")
                continue
            for name in VARIANTS:
                v = r.get(name)
                if v is None:
                    continue
                memory = v.get("memory", {})
                peak = memory.get("peak_live_bytes", memory.get("max_memory_allocated"))
                lines.append(
                    f"| {r['name']} | {r['batch']} | {name} | {v['median_ms']:.3f} | "
                    f"{_num(v.get('ratio_to_torch'))} | {_num(v.get('ratio_to_torch_graph'))} | "
                    f"{v['median_wall_ms']:.3f} | {_mb(peak)} | "
                    f"{_mb(memory.get('graph_pool_bytes'))} | {v['loss_after']:.5f} | "
                    f"{v['model']} |")
        lines.append("")
    if kernels_doc is not None:
        lines += ["## Fused kernels: GB/s and fraction of device-copy bandwidth", ""]
        if kernels_doc.get("skipped"):
            lines += [f"skipped: {kernels_doc.get('reason')}", ""]
        else:
            copy = kernels_doc.get("copy", {})
            lines += [f"{kernels_doc.get('elements')} float32 elements; copy ceiling "
                      f"{_num(copy.get('ceiling_gbps'), '{:.0f}')} GB/s", "",
                      "| kernel | native GB/s | native | cupy GB/s | cupy | reference GB/s | "
                      "reference |", "|---|---|---|---|---|---|---|"]
            by_kernel: dict = {}
            for r in kernels_doc.get("results", []):
                by_kernel.setdefault(r["kernel"], {})[r["level"]] = r
            for name, levels in by_kernel.items():
                cells = []
                for level in ("native", "cupy", "reference"):
                    r = levels.get(level, {})
                    if "gbps" in r:
                        cells += [f"{r['gbps']:.0f}", f"{r['fraction_of_copy']:.0%}"]
                    else:
                        cells += ["-", "error" if "error" in r else "-"]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def write_summary(path: str | None, doc: dict, kernels_json: str | None) -> None:
    if not path:
        return
    kernels_doc = None
    if kernels_json and os.path.exists(kernels_json):
        with open(kernels_json) as f:
            kernels_doc = json.load(f)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(summary_markdown(doc, kernels_doc))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("gpu-results", "gpu_mlp.json"))
    parser.add_argument("--summary", default=os.path.join("gpu-results", "gpu_summary.md"))
    parser.add_argument("--kernels-json", default=None,
                        help="gpu_kernels.json to tabulate in the summary too")
    parser.add_argument("--configs", default=",".join(c[0] for c in CONFIGS),
                        help="comma-separated names from: " + ", ".join(c[0] for c in CONFIGS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat-scale", type=float, default=1.0,
                        help="multiply each configuration's repeat count")
    args = parser.parse_args(argv)
    doc = run_header(SCHEMA)

    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"CUDA not available: skipped ({reason})")
        doc.update(skipped=True, reason=reason)
        write_json(args.out, doc)
        write_summary(args.summary, doc, args.kernels_json)
        return 0

    import cupy as cp

    import gpugrad as gg

    try:
        import torch
    except ImportError:
        torch = None
    env = versions()
    doc.update({
        "skipped": False,
        "versions": env,
        "device": gg.cuda.get_device_name(),
        "cupy": cp.__version__,
        "torch": None if torch is None else torch.__version__,
        "torch_cuda": None if torch is None else torch.version.cuda,
        "torch_tf32_matmul": None if torch is None else torch.backends.cuda.matmul.allow_tf32,
        "gpugrad_file": gg.__file__,
        "backend_info": gg.backend_info(),
        "timing": "CUDA events of each library around one step after a device synchronize; "
                  "wall = perf_counter over the same span; medians",
        "results": [],
    })
    print(f"gpugrad from {gg.__file__}; device {doc['device']}; torch {doc['torch']}")
    wanted = set(args.configs.split(","))
    failures = 0
    for name, sizes, batch, repeats in CONFIGS:
        if name not in wanted:
            continue
        repeats = max(3, int(round(repeats * args.repeat_scale)))
        started = time.perf_counter()
        try:
            row = run_config(cp, gg, torch, name, sizes, batch, repeats, args.warmup)
        except Exception as exc:  # noqa: BLE001 - record it; the next size may still run
            failures += 1
            traceback.print_exc()
            row = {"name": name, "sizes": list(sizes), "batch": batch,
                   "error": f"{type(exc).__name__}: {exc}"}
        row["seconds"] = time.perf_counter() - started
        row["versions"] = env
        doc["results"].append(row)
        write_json(args.out, doc)
        write_summary(args.summary, doc, args.kernels_json)
        if "gpugrad" in row:
            print(f"{name} b{batch}: " + ", ".join(
                f"{v} {row[v]['median_ms']:.3f} ms" for v in VARIANTS if v in row))
        else:
            print(f"{name} b{batch}: {row.get('skipped') or row.get('error')}")
        gc.collect()  # drop this size's models before the next one allocates
        cp.get_default_memory_pool().free_all_blocks()
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"wrote {args.out}" + (f" and {args.summary}" if args.summary else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
