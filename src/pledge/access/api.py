"""REST routes for a tenant's API keys (scope `apikeys:manage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from pledge.access import service
from pledge.access.context import TenantContext
from pledge.access.models import ApiKey
from pledge.access.permissions import Scope
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"], responses=PROBLEMS)

Manage = Annotated[TenantContext, Depends(api_context(Scope.APIKEYS_MANAGE))]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyCreated(ApiKeyOut):
    token: str = Field(description="Shown once. Only a digest is stored.")


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=str(key.id),
        name=key.name,
        scopes=key.scopes,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


@router.get("", response_model=list[ApiKeyOut])
def list_keys(ctx: Manage) -> list[ApiKeyOut]:
    return [_out(k) for k in service.list_api_keys(ctx)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(body: ApiKeyIn, ctx: Manage) -> ApiKeyCreated:
    key, token = service.create_api_key(ctx, name=body.name, scopes=frozenset(body.scopes))
    return ApiKeyCreated(**_out(key).model_dump(), token=token)


@router.delete("/{key_id}", response_model=ApiKeyOut)
def revoke_key(key_id: str, ctx: Manage) -> ApiKeyOut:
    return _out(service.revoke_api_key(ctx, key_id))
