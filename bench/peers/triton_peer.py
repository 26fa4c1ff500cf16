"""Triton Inference Server (through PyTriton) serving one ONNX file of the store with ONNX Runtime.

The field's reference server as a peer for the V2 benchmark: Triton's own C++ HTTP and gRPC front
ends and its dynamic batcher, in front of an ONNX Runtime session with one intra-op thread (as the
service's sessions run) inside PyTriton's Python model. It runs in its own environment
(`make .venv-triton`: Python 3.12, bench/requirements-triton.txt), never in the project's:

    LD_LIBRARY_PATH=/root/.pyenv/versions/3.12.1/lib .venv-triton/bin/python bench/peers/triton_peer.py \
        --model model_store/cnn/1/model.onnx --name cnn --http-port 8010 --grpc-port 8011

Triton's Python backend stub links libpython3.12.so.1.0: the loader must find it (bench.triton sets
LD_LIBRARY_PATH from the interpreter's own prefix). The script blocks until SIGTERM or SIGINT.
Standard library, numpy, onnxruntime and pytriton only; no import from the project.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def open_session(path: str) -> ort.InferenceSession:
    """One intra-op and one inter-op thread, sequential execution: what the service's sessions use."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the ONNX file (input `image`, output `probabilities`)")
    parser.add_argument("--name", default="cnn")
    parser.add_argument("--http-port", type=int, default=8010)
    parser.add_argument("--grpc-port", type=int, default=8011)
    parser.add_argument("--max-batch", type=int, default=1024)
    parser.add_argument("--instances", type=int, default=2,
                        help="model instances, each with its own session (the service's work_threads default: 2)")
    parser.add_argument("--queue-delay-us", type=int, default=500,
                        help="the dynamic batcher's wait, as the store's config.pbtxt sets it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    sessions = [open_session(args.model) for _ in range(args.instances)]
    image = sessions[0].get_inputs()[0]
    output = sessions[0].get_outputs()[0].name

    def instance(session: ort.InferenceSession) -> object:
        @batch  # type: ignore[untyped-decorator]  # pytriton is not in the project environment
        def infer(image: np.ndarray) -> dict[str, np.ndarray]:  # the batch arrives under the input's name
            return {"probabilities": session.run([output], {"image": image})[0]}

        return infer

    # Metrics off: the service's figures have its own metrics on, but Triton's are on a separate port
    # and recorded in C++; leaving them on changes nothing measurable and costs a third listener.
    config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                          grpc_port=args.grpc_port, allow_metrics=False, log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=args.name,
            # One model instance per function: Triton runs them side by side, as the service's work threads.
            infer_func=[instance(session) for session in sessions],
            inputs=[Tensor(name=image.name, dtype=np.float32, shape=tuple(image.shape[1:]))],
            outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=args.max_batch,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=args.queue_delay_us)),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
