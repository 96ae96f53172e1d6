#!/usr/bin/env python3
"""`npm --prefix frontend run build` of the stand-in: bundle frontend/src into static/dist/VERSION.

    python3 frontend/build.py VERSION            # write static/dist/VERSION
    python3 frontend/build.py VERSION --check    # build in memory; exit 1 unless dist holds exactly that
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIST = HERE.parent / "static" / "dist"


def build(version: str) -> dict[str, str]:
    bundle = "".join(f"// {p.name}\n{p.read_text()}" for p in sorted((HERE / "src").glob("*.js")))
    name = f"assets/app.{hashlib.sha256(bundle.encode()).hexdigest()[:8]}.js"
    page = (f'<!doctype html><html><body><div id="app" data-release="{version}"></div>'
            f'<script type="module" src="/{name}"></script></body></html>\n')
    manifest = json.dumps({"version": version, "entry": name}, indent=2) + "\n"
    return {"manifest.json": manifest, "index.html": page, name: bundle}


def main() -> int:
    version, check = sys.argv[1], "--check" in sys.argv[2:]
    files, out = build(version), DIST / version
    if check:
        found = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} if out.is_dir() else set()
        bad = sorted(found ^ set(files)) + sorted(n for n in files if n in found and (out / n).read_text() != files[n])
        for name in bad:
            print(f"static/dist/{version}/{name}: differs from what the sources build", file=sys.stderr)
        return 1 if bad else 0
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    print(f"built static/dist/{version}: {', '.join(sorted(files))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
