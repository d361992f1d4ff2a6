"""The hub tests' PostgreSQL: one cluster per pytest worker, one database per test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.pg_rig import Postgres, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Postgres]:
    """A PostgreSQL cluster of our own (not under pytest's temp folder: the unprivileged
    server user could not enter it)."""
    folder = Path(tempfile.mkdtemp(prefix="spotter-pg-"))
    pg = start_cluster(folder)
    try:
        yield pg
    finally:
        try:
            pg.stop("immediate")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_cluster: Postgres) -> str:
    """A fresh database in the cluster, for this test alone."""
    return pg_cluster.create_database(f"t{uuid.uuid4().hex[:16]}")
