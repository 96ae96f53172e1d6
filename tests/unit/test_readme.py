"""The README's promises: two set-up commands, and a tour runbook that validates."""

from __future__ import annotations

import re
from pathlib import Path

from tminus.runbook.loader import load_runbook

README = Path(__file__).resolve().parents[2] / "README.md"


def test_first_block_has_exactly_two_commands_using_the_root_venv_scripts() -> None:
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", README.read_text(), re.S | re.M)
    commands = [line for line in blocks[0].splitlines() if line.strip()]
    assert commands == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    root = README.parent
    for script in ("scripts/quickstart.sh", "scripts/test.sh"):
        assert "bootstrap.sh" in (root / script).read_text()
    assert ".venv" in (root / "scripts/bootstrap.sh").read_text()


def test_tour_runbook_validates(tmp_path: Path) -> None:
    block = re.search(r"^```yaml\n(.*?)^```", README.read_text(), re.S | re.M)
    assert block is not None
    doc = load_runbook(tmp_path / "tour.yaml", text=block.group(1))
    assert doc.runbook.name == "notes-cutover"
