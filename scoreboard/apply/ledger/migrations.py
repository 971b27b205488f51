"""Versioned schema migrations: numbered SQL files, applied once each, under one lock."""

from __future__ import annotations

import logging
import re
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process of the deployment.
_MIGRATION_LOCK = 0x5C0AEB0A4D
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration in the package, oldest first."""
    folder = resources.files("scoreboard.apply.ledger").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


async def migrate(connection: asyncpg.Connection) -> list[str]:
    """Apply the migrations this database lacks; safe to run twice and from two workers at once."""
    applied_now = []
    async with connection.transaction():
        # Concurrent callers queue here; the second one then finds nothing left to do.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now()
               )"""
        )
        done = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }
        for version, name, sql in migration_files():
            if version in done:
                continue
            await connection.execute(sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied_now.append(name)
    for name in applied_now:
        log.info("applied migration %s", name)
    return applied_now
