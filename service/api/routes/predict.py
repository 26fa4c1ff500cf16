"""POST /predict."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from digit_contract.errors import InvalidImage, NoInk, PayloadTooLarge, UnsupportedImage
from service.api.dependencies import DataPlaneDep, SettingsDep
from service.api.error_handlers import error_responses
from service.api.request_inputs import FilesInput, PixelTarget, read_image_input, upload_slot
from service.errors import InvalidInput, MalformedBody, ModelNotFound, ModelNotReady, UnsupportedMediaType
from service.schemas import PixelsRequest, Prediction

router = APIRouter(tags=["predict"])

ModelQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Model to use (see GET /models). Omitted: the default model, which unless configured "
        "otherwise (DIGITS_DEFAULT_MODEL) is the ready model with the best test accuracy.",
    ),
]

ExplainQuery = Annotated[
    bool,
    Query(description="Also return, for each image file, the image the model saw (28x28, or 8x8 for the UCI "
          "8x8 models; base64 PNG, "
          "`image.prepared_png`); `image.box` always says where in the upload the digit was found."),
]

CalibratedQuery = Annotated[
    bool,
    Query(description="false: the model's raw softmax instead of temperature-scaled probabilities (the digit is "
          "the same; each answer's `calibrated` says which it got)."),
]

_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}

IMAGE_BODY: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1,
                                    "description": "One or more image files, each as a part named `file`."}},
            "required": ["file"],
        }
    },
    "image/png": _BINARY,
    "image/jpeg": _BINARY,
    "image/*": _BINARY,
    "application/octet-stream": _BINARY,
}

PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Image files (PNG, JPEG, BMP, GIF, WebP, TIFF; format detected from the bytes) as "
        "multipart `file` parts or a raw body, or JSON pixel arrays already normalised to [0, 1]: 28x28 for the "
        "MNIST models, the model's own `input` shape and range for others (8x8 for the UCI 8x8 models).",
        "content": {**IMAGE_BODY, "application/json": {"schema": PixelsRequest.model_json_schema()}},
    }
}

IMAGE_ERRORS = (UnsupportedImage, InvalidImage, MalformedBody, PayloadTooLarge, NoInk, InvalidInput,
                UnsupportedMediaType)


@router.post(
    "/predict",
    response_model=Prediction | list[Prediction],
    summary="Predict the digit in one or more images",
    responses={
        200: {"description": "One answer for one image (one `file` part or a raw body); a list, in order, "
                             "for several `file` parts or for JSON pixels."},
        **error_responses(ModelNotFound, ModelNotReady, *IMAGE_ERRORS),
    },
    openapi_extra=PREDICT_BODY,
)
async def predict(request: Request, dataplane: DataPlaneDep, settings: SettingsDep,
                  model: ModelQuery = None, explain: ExplainQuery = False,
                  calibrated: CalibratedQuery = True) -> Prediction | list[Prediction]:
    """Predict the digit in one or more images: multipart `file` parts, a raw image body, or JSON pixels."""
    async with upload_slot(request):
        target = PixelTarget(*dataplane.pixel_target(model))
        body = await read_image_input(request, settings, target=target)
        if not isinstance(body, FilesInput):
            # The model the pixels were read for (the default chosen once), or the unknown name for its 404.
            return await dataplane.predict_pixels(body.images, target.model or model, body.spec, calibrated=calibrated)
        answers = await dataplane.predict_files(body.files, model, explain=explain, calibrated=calibrated)
    return answers if body.as_list else answers[0]
