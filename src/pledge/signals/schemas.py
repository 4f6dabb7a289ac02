"""API shapes of the signal settings and `/.well-known/gpc.json`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pledge.signals.settings import MAX_HOSTS, DntPolicy


class GpcJson(BaseModel):
    """GPC specification §3.4: the site's statement that it honours the signal."""

    gpc: bool
    lastUpdate: str = Field(description="YYYY-MM-DD", examples=["2026-01-31"])


class SignalSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    honour_gpc: StrictBool | None = Field(
        default=None, description="Honour GPC as an opt-out of sale/sharing (11 CCR §7025)"
    )
    dnt_policy: DntPolicy | None = Field(
        default=None, description="record: no effect; opt_out: DNT: 1 acts like GPC"
    )
    public_hosts: list[str] | None = Field(
        default=None,
        max_length=MAX_HOSTS,
        description="Host names of the tenant's public pages (for /.well-known/gpc.json)",
    )


class SignalSettingsOut(BaseModel):
    honour_gpc: bool
    dnt_policy: str
    public_hosts: list[str]
    signals_updated_at: datetime | None
    gpc_json: GpcJson
