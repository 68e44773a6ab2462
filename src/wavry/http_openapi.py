"""OpenAPI of the control-plane HTTP services (master, gateway).

Both answer a request that fails validation with 400 ``{"error", "detail"}`` instead of FastAPI's
422; the published spec must say so, or schema-driven clients and fuzzers expect the wrong code.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["openapi_with_400"]

_INVALID_REQUEST = {
    "description": "Invalid request",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def openapi_with_400(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with every 422 response replaced by our 400 ``ErrorBody``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", _INVALID_REQUEST)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
