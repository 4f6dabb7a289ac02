"""Alembic environment for the datastore. The engine comes from `pledge.migrations.upgrade`."""

from __future__ import annotations

from alembic import context

from pledge.migrations import render_item
from pledge.schema import Base

target_metadata = Base.metadata

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
