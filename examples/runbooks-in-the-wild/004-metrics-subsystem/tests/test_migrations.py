"""The release's own test subset for the pre-deployment checklist: the migration files are in order."""

import re
import unittest
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[1] / "docs" / "db" / "migrations"


class Migrations(unittest.TestCase):
    def test_eight_numbered_files_in_order(self) -> None:
        names = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
        self.assertEqual([n[:4] for n in names], [f"{i:04d}" for i in range(1, 9)])
        self.assertTrue(all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", n) for n in names))


if __name__ == "__main__":
    unittest.main()
