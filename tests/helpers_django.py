"""The tiny Django project of tests/fixtures/django_project on a scratch PostgreSQL database: copied
into a test's folder, migrated by the `migrate` kind with this interpreter (Django is a dev extra),
and read back outside tminus (django_migrations rows; pg_dump of schema and rows)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

PROJECT = Path(__file__).resolve().parent / "fixtures" / "django_project"
SHOP = ["0001_initial", "0002_product_price", "0003_populate_prices", "0004_order"]
BLOG = ["0001_initial", "0002_post_slug", "0003_seed_posts"]


def make_project(root: Path) -> Path:
    """The project under root/app (manage.py at root/app/manage.py); root is the runbook's folder."""
    shutil.copytree(PROJECT, root / "app", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def django(url: str, **options: Any) -> dict[str, Any]:
    """A `migrate` step's configuration for the project, the database passed as DATABASE_URL."""
    env = {"DATABASE_URL": url, **options.pop("env", {})}
    extra = {k: options.pop(k) for k in ("lock_wait", "dry_run") if k in options}
    return {"migrate": {"url": url, **extra,
                        "django": {"manage": "app/manage.py", "python": sys.executable, "env": env, **options}}}


class Db:
    """The scratch database, as PostgreSQL itself shows it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)

    def rows(self) -> list[tuple[str, str]]:
        """django_migrations (app, name) in the order they were applied."""
        with psycopg.connect(self.libpq) as conn:
            if conn.execute("SELECT to_regclass('django_migrations')").fetchone() == (None,):
                return []
            return [(a, n) for a, n in conn.execute("SELECT app, name FROM django_migrations ORDER BY id")]

    def applied(self, app: str) -> list[str]:
        return [n for a, n in self.rows() if a == app]

    def execute(self, *statements: str) -> None:
        with psycopg.connect(self.libpq, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def scalar(self, query: str) -> Any:
        with psycopg.connect(self.libpq) as conn:
            row = conn.execute(query).fetchone()
        return None if row is None else row[0]

    def dump(self) -> list[str]:
        """Schema and rows (sorted), tminus' own tracking tables and sequence positions left out: a
        revert brings tables, columns, constraints and rows back; sequences move on by nature."""
        schema = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--exclude-table=schema_migrations*",
                                 self.libpq], capture_output=True, text=True, check=True).stdout
        data = subprocess.run(["pg_dump", "--data-only", "--no-owner", "--exclude-table=schema_migrations*",
                               self.libpq], capture_output=True, text=True, check=True).stdout
        lines = [*schema.splitlines(), *sorted(data.splitlines())]
        return [line for line in lines if not line.startswith(("\\restrict", "\\unrestrict"))
                and "pg_catalog.setval" not in line]
