"""Inference kernels: ONNX Runtime against Keras on the same weights, and against this machine's limit.

For every model in the store:
- batch-1 latency (median) and large-batch throughput (images/s) of ONNX Runtime;
- the same for Keras on the very same weights, called as `model(x)` and as `model.predict(x)`;
- FLOPs per image counted from the ONNX graph (Conv, MatMul, Gemm: 2 FLOPs per multiply-add),
  and the fraction of the machine's measured float32 peak (a large NumPy matrix product, run
  in the same process) that the large-batch throughput reaches.

Absolute times drift on shared machines; the report gives ratios measured in one run.

    python -m bench.kernels --store model_store --out bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference

from digit_contract.inputs import INPUT_NAME, OUTPUT_NAME
from digit_contract.store import MODEL_FILE, latest_versions, version_dir


def measure_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GEMM rate of NumPy's BLAS on all cores: the machine's practical compute limit."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def count_flops(path: Path) -> int:
    """FLOPs of one image through the graph (multiply-adds x 2) for Conv, MatMul and Gemm."""
    proto = onnx.load(str(path))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # fix the batch at 1
    inferred = shape_inference.infer_shapes(proto)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    shapes.update({i.name: list(i.dims) for i in inferred.graph.initializer})
    flops = 0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]  # N, C_out, H, W
            weight = shapes[node.input[1]]  # C_out, C_in/groups, kH, kW
            flops += 2 * int(np.prod(out)) * int(np.prod(weight[1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            flops += 2 * int(np.prod(a[:-1])) * a[-1] * b[-1]
    return flops


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latency_ms(fn: Callable[[], object], seconds: float) -> float:
    """Median wall time of `fn` in ms, repeated for about `seconds` after a warm-up."""
    for _ in range(20):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 20:
        times.append(_timed(fn))
    return statistics.median(times) * 1e3


def throughput(fn: Callable[[], object], batch: int, seconds: float) -> float:
    """Images per second of `fn` on one batch, best of repeated runs for about `seconds`."""
    fn()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        best = min(best, _timed(fn))
    return batch / best


def ort_session(path: Path, *, optimize: bool = True) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bench_model(name: str, path: Path, images: np.ndarray, batch: int, seconds: float, keras: bool) -> dict[str, Any]:
    one, many = images[:1], images[:batch]
    session = ort_session(path)
    row: dict[str, Any] = {
        "model": name,
        "flops_per_image": count_flops(path),
        "ort_batch1_ms": latency_ms(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: one}), seconds),
        "ort_images_per_s": throughput(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: many}), batch, seconds),
    }
    unoptimized = ort_session(path, optimize=False)
    row["ort_no_graph_opt_images_per_s"] = throughput(
        lambda: unoptimized.run([OUTPUT_NAME], {INPUT_NAME: many}), batch, seconds
    )
    if keras:
        from training.onnx_to_keras import keras_model_from_onnx
        from training.variants import VARIANTS_BY_NAME

        model = keras_model_from_onnx(VARIANTS_BY_NAME[name], path)
        row["keras_call_batch1_ms"] = latency_ms(lambda: model(one, training=False), seconds)
        row["keras_predict_batch1_ms"] = latency_ms(lambda: model.predict(one, verbose=0), seconds)
        row["keras_call_images_per_s"] = throughput(lambda: model(many, training=False), batch, seconds)
        row["keras_predict_images_per_s"] = throughput(
            lambda: model.predict(many, batch_size=batch, verbose=0), batch, seconds
        )
    return row


def markdown(report: dict[str, Any]) -> str:
    peak = report["peak_gflops"]
    lines = [
        f"Machine: {report['machine']}; float32 peak (NumPy {report['gemm_size']}² GEMM): {peak:.1f} GFLOP/s; "
        f"batch {report['batch']}.",
        "",
        "| model | MFLOPs/image | ORT batch-1 ms | Keras `model(x)` batch-1 ms | Keras `predict` batch-1 ms "
        "| ORT images/s | Keras `model(x)` images/s | Keras `predict` images/s | ORT / Keras predict "
        "| limit images/s | ORT share of limit |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["models"]:
        limit = peak * 1e9 / r["flops_per_image"]
        keras_cells = (
            f"{r['keras_call_batch1_ms']:.3f} | {r['keras_predict_batch1_ms']:.2f} | {r['ort_images_per_s']:,.0f} "
            f"| {r['keras_call_images_per_s']:,.0f} | {r['keras_predict_images_per_s']:,.0f} "
            f"| {r['ort_images_per_s'] / r['keras_predict_images_per_s']:.1f}x"
            if "keras_call_batch1_ms" in r
            else f"- | - | {r['ort_images_per_s']:,.0f} | - | - | -"
        )
        lines.append(
            f"| {r['model']} | {r['flops_per_image'] / 1e6:.2f} | {r['ort_batch1_ms']:.3f} | {keras_cells} "
            f"| {limit:,.0f} | {r['ort_images_per_s'] / limit:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--batch", type=int, default=2048, help="images per large batch")
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent per measurement")
    parser.add_argument("--models", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras side (no TensorFlow needed)")
    parser.add_argument("--gemm-size", type=int, default=2048)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    rng = np.random.default_rng(0)
    # Real digits are not needed for timing; values in [0, 1] with MNIST-like sparsity are.
    images = (rng.random((args.batch, 28, 28, 1)) > 0.8).astype(np.float32)
    wanted = [m for m in args.models.split(",") if m]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "gemm_size": args.gemm_size,
        "batch": args.batch,
        "peak_gflops": measure_peak_gflops(args.gemm_size),
        "models": [],
    }
    for name, version in latest_versions(args.store).items():
        if wanted and name not in wanted:
            continue
        path = version_dir(args.store, name, version) / MODEL_FILE
        report["models"].append(bench_model(name, path, images, args.batch, args.seconds, keras=not args.no_keras))
        print(f"{name}: done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kernels.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "kernels.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
