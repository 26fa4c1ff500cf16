"""GET /models, GET /models/compare, POST /models/compare, GET /models/{name}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from service.api.dependencies import DataPlaneDep, SettingsDep
from service.api.error_handlers import error_responses
from service.api.request_inputs import FilesInput, read_image_input, upload_slot
from service.api.routes.predict import IMAGE_BODY, IMAGE_ERRORS, CalibratedQuery, ExplainQuery
from service.errors import InvalidInput, ModelNotFound, NoModelReady
from service.schemas import ImageComparison, ModelComparison, ModelDetail, ModelList, ReadingComparison

router = APIRouter(prefix="/models", tags=["models"])

COMPARE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One image file, as a multipart `file` part or a raw body.",
        "content": IMAGE_BODY,
    }
}

ReadQuery = Annotated[
    bool,
    Query(description="true: each model reads the number written on the image's central line, as POST /read "
          "answers (`readings`), and the agreement is on the text; false: each model's digit, as POST /predict."),
]


@router.get("", response_model=ModelList, summary="List the models")
async def list_models(dataplane: DataPlaneDep) -> ModelList:
    """Every model in the store: version, ready or not and why, execution providers, default."""
    return dataplane.list_models()


# Declared before /models/{name} so that `compare` is not taken for a model name.
@router.get("/compare", response_model=ModelComparison, summary="Compare the models")
async def compare_models(dataplane: DataPlaneDep) -> ModelComparison:
    """The models side by side, per test set: ranks, test metrics, size, latency here, CNN-vs-MLP and regularisation deltas."""
    return await dataplane.compare_models()


@router.post(
    "/compare",
    response_model=ImageComparison | ReadingComparison,
    summary="Every model's prediction (or reading of the number) for one image",
    responses=error_responses(NoModelReady, *IMAGE_ERRORS),
    openapi_extra=COMPARE_BODY,
)
async def compare_image(request: Request, dataplane: DataPlaneDep, settings: SettingsDep,
                        explain: ExplainQuery = False, calibrated: CalibratedQuery = True,
                        read: ReadQuery = False) -> ImageComparison | ReadingComparison:
    """Every ready model's prediction for one image (`?read=true`: its reading of the number), with their agreement."""
    async with upload_slot(request):
        body = await read_image_input(request, settings, allow_pixels=False)
        assert isinstance(body, FilesInput)
        if len(body.files) != 1:
            raise InvalidInput(f"POST /models/compare takes exactly one image, got {len(body.files)}")
        if read:
            return await dataplane.compare_reading(body.files[0], explain=explain, calibrated=calibrated)
        return await dataplane.compare_image(body.files[0], explain=explain, calibrated=calibrated)


@router.get("/{name}", response_model=ModelDetail, summary="One model and its card",
            responses=error_responses(ModelNotFound))
async def describe_model(name: str, dataplane: DataPlaneDep) -> ModelDetail:
    """One model: state, providers, latency here, and its card (history, confusion matrix, per-class metrics)."""
    return dataplane.describe_model(name)
