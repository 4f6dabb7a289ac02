"""Alembic migrations: `datastore/` for the data store, `keystore/` for the keystore.

The schema is only ever created by these migrations (`pledge init`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from pledge.core.db import ID, UTCDateTime


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render our column types as plain SQLAlchemy types, so a migration never imports
    application code that may change after it is written."""
    if type_ == "type" and isinstance(obj, ID):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), 'postgresql')"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _config(which: str, engine: Engine) -> Config:
    location = Path(str(resources.files("pledge.migrations").joinpath(which)))
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(which: str, engine: Engine, revision: str = "heads") -> None:
    command.upgrade(_config(which, engine), revision)


def is_current(which: str, engine: Engine) -> bool:
    script = ScriptDirectory.from_config(_config(which, engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) == set(script.get_heads())
