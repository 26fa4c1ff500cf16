"""Regenerate the gRPC stubs of this folder from the vendored `open_inference_grpc.proto`.

    .venv/bin/python -m service.inference_protocol.proto.regenerate [--out DIR]

Only the messages are generated (`_pb2.py` and its typed `.pyi`): the server registers its
handlers itself (`grpc_server.py`), so no untyped `_pb2_grpc.py` is needed. The generated modules
are committed (serving needs only grpcio and protobuf, not grpcio-tools);
`tests/oip/test_grpc_stubs.py` regenerates them into a temporary folder and checks that the
committed ones are what this script writes. grpcio-tools 1.78 (protobuf 6.31 gencode) is a dev
dependency: its code runs on the protobuf 6.33 that serving pins and on any later runtime.

One edit to protoc's output: the descriptors go into a private descriptor pool instead of
protobuf's default one. The protocol's package is `inference`, the same as Triton's own
`grpc_service.proto`, so with the default pool a process that also imports tritonclient's stubs
(the tests, or a user's gateway) would fail with "duplicate symbol 'inference.ModelInferRequest'".
Messages of a private pool serialise to the same bytes on the wire.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PROTO = HERE / "open_inference_grpc.proto"
GENERATED = ("open_inference_grpc_pb2.py", "open_inference_grpc_pb2.pyi")

_DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
_PRIVATE_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("


def generate(out: Path) -> list[Path]:
    """Write the generated modules into `out`; returns their paths."""
    from grpc_tools import protoc  # dev dependency: imported only when regenerating

    relative = PROTO.relative_to(REPO)
    with tempfile.TemporaryDirectory() as scratch:
        # protoc names the generated imports after the path under -I: running it from the
        # repository root gives `from service.inference_protocol.proto import ..._pb2`.
        argv = ["protoc", f"-I{REPO}", f"--python_out={scratch}", f"--pyi_out={scratch}", str(REPO / relative)]
        if protoc.main(argv) != 0:
            raise SystemExit("protoc failed")
        written = []
        for name in GENERATED:
            source = Path(scratch) / relative.parent / name
            text = source.read_text()
            if name.endswith("_pb2.py"):
                if _DEFAULT_POOL not in text:
                    raise SystemExit("protoc's output changed: no default-pool registration to replace")
                text = text.replace(_DEFAULT_POOL, _PRIVATE_POOL)
            target = out / name
            target.write_text(text)
            written.append(target)
        return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: this one)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
