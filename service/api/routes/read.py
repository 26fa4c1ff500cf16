"""POST /read: the number in an image, not only one digit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.api.dependencies import DataPlaneDep, SettingsDep
from service.api.error_handlers import error_responses
from service.api.request_inputs import FilesInput, read_image_input, upload_slot
from service.api.routes.predict import IMAGE_BODY, IMAGE_ERRORS, CalibratedQuery, ExplainQuery, ModelQuery
from service.errors import InvalidInput, ModelNotFound, ModelNotReady
from service.schemas import NumberReading

router = APIRouter(tags=["predict"])

READ_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One image file with a number written on one line, as a multipart `file` part or a raw body.",
        "content": IMAGE_BODY,
    }
}


@router.post(
    "/read",
    response_model=NumberReading,
    summary="Read the number in one image",
    responses={
        200: {"description": "The digits of the line nearest the image's centre, left to right along the line, "
                             "grouped where a wide gap separates them (`text`: \"12 500\")."},
        **error_responses(ModelNotFound, ModelNotReady, *IMAGE_ERRORS),
    },
    openapi_extra=READ_BODY,
)
async def read_number(request: Request, dataplane: DataPlaneDep, settings: SettingsDep,
                      model: ModelQuery = None, explain: ExplainQuery = False,
                      calibrated: CalibratedQuery = True) -> NumberReading:
    """Read the number (one line of digits) in one image: a multipart `file` part or a raw image body."""
    async with upload_slot(request):
        body = await read_image_input(request, settings, allow_pixels=False)
        assert isinstance(body, FilesInput)  # allow_pixels=False: JSON is refused as 415
        if len(body.files) != 1:
            raise InvalidInput(f"POST /read takes exactly one image, got {len(body.files)}")
        return await dataplane.read_number(body.files[0], model, explain=explain, calibrated=calibrated)
