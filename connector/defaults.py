"""The defaults a deployment starts from, carried in the package (``connector/bundled/``).

In a checkout these are the top-level ``config.yaml``, ``config.schema.json``, ``mappings/`` and
``deploy/`` (``connector/bundled/`` links to them); a wheel carries copies. ``lapor-connector
init DIR`` writes a deployment directory from them, and the demo reads its mappings here, so
both work from any directory after ``pip install``.
"""

from __future__ import annotations

import re
import shutil
from importlib.resources import files
from pathlib import Path

#: What ``init`` writes, relative to the bundle (folders are copied whole).
DEPLOYMENT = ("config.yaml", "config.schema.json", "mappings", "deploy")


def bundled(name: str) -> Path:
    """A file or folder of the bundle (``mappings``, ``config.yaml``, ...)."""
    return Path(str(files("connector") / "bundled" / name))


def _planned(target: Path) -> list[tuple[Path, Path]]:
    """(source, destination) of every file ``init`` writes."""
    pairs: list[tuple[Path, Path]] = []
    for name in DEPLOYMENT:
        source = bundled(name)
        if source.is_dir():
            pairs += [
                (f, target / name / f.relative_to(source))
                for f in sorted(source.rglob("*"))
                if f.is_file() and "__pycache__" not in f.parts
            ]
        elif source.is_file():
            pairs.append((source, target / name))
    return pairs


def init_deployment(target: Path, *, force: bool = False) -> list[Path]:
    """Write a deployment directory: the example configuration (its paths made absolute under
    ``target``), its JSON Schema, the mappings and the systemd units. Refuses to overwrite a
    file unless ``force``; returns the files written."""
    pairs = _planned(target)
    existing = [destination for _, destination in pairs if destination.exists()]
    if existing and not force:
        raise FileExistsError(existing[0])
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source, destination in pairs:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.name == "config.yaml" and destination.parent == target:
            destination.write_text(
                _localised(source.read_text(encoding="utf-8"), target), encoding="utf-8"
            )
        else:
            shutil.copyfile(source, destination)
        written.append(destination)
    return written


def _localised(config: str, target: Path) -> str:
    """The example configuration with its mappings and state paths under ``target``."""
    root = target.resolve()
    config = re.sub(r"(?m)^(mappings:\n  path: )\S+", rf"\g<1>{root / 'mappings'}", config)
    return re.sub(
        r"(?m)^(state:\n  path: )\S+", rf"\g<1>{root / 'state' / 'connector.sqlite'}", config
    )
