"""Fixtures shared by the test modules."""

from pathlib import Path

import pytest


@pytest.fixture
def tmp_db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet, in a fresh temporary directory."""
    return tmp_path / "test.duckdb"
