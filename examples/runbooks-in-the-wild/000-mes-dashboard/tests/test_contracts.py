"""The focused regression subset of 000 gate 7: field contracts and KPI parity, offline."""

import re
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

import app  # noqa: E402


class Contracts(unittest.TestCase):
    def test_export_headers_match_the_shared_field_contracts(self) -> None:
        text = (HERE / "frontend" / "src" / "field-contracts.js").read_text()
        for name, header in app.HEADERS.items():
            self.assertIn(f'"{name}": "{header}"', text)

    def test_frontend_and_backend_kpis_agree_within_tolerance(self) -> None:
        back, front = app.kpis("backend"), app.kpis("frontend")
        for key in back:
            self.assertAlmostEqual(back[key], front[key], delta=0.001)

    def test_client_does_not_retry_aggressively(self) -> None:
        text = (HERE / "frontend" / "src" / "api.js").read_text()
        self.assertTrue(re.search(r"maxRetries: 1\b", text))


if __name__ == "__main__":
    unittest.main()
