"""Helpers of the model tests: sessions that lie about their graph or providers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from service.models.sessions import InferenceSessionLike, ProviderPlan, create_onnx_session

CPU_PLAN = ProviderPlan("cpu", ("CPUExecutionProvider",), required="CPUExecutionProvider")


class FakeSession:
    """Wraps a real CPU session and lies about what a test needs it to lie about."""

    def __init__(self, real: InferenceSessionLike, *, providers: Sequence[str] | None = None,
                 inputs: Sequence[Any] | None = None, logits: bool = False) -> None:
        self.real, self.providers, self.inputs, self.logits = real, providers, inputs, logits

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> Sequence[Any]:
        out = self.real.run(output_names, input_feed, run_options)
        return [np.log(out[0]) * 3] if self.logits else out

    def get_inputs(self) -> Sequence[Any]:
        return self.inputs if self.inputs is not None else self.real.get_inputs()

    def get_outputs(self) -> Sequence[Any]:
        return self.real.get_outputs()

    def get_providers(self) -> list[str]:
        return list(self.providers) if self.providers is not None else self.real.get_providers()


class Tensor:
    def __init__(self, name: str, type_: str, shape: list[int | str | None]) -> None:
        self.name, self.type, self.shape = name, type_, shape


def fake_factory(**lies: Any) -> Callable[[bytes, ProviderPlan, int], InferenceSessionLike]:
    def build(model: bytes, plan: ProviderPlan, threads: int) -> InferenceSessionLike:
        return FakeSession(create_onnx_session(model, CPU_PLAN, threads), **lies)

    return build
