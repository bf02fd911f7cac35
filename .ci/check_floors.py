"""Fail when .ci/floors.txt does not pin each runtime dependency at its pyproject.toml floor.

pip itself refuses a pin below a floor; this catches the silent direction, a pin above
its floor, which would let CI pass on releases newer than the ones users are promised.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

root = Path(__file__).resolve().parent.parent
project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
pins = {}
for line in (root / ".ci" / "floors.txt").read_text(encoding="utf-8").splitlines():
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)==(\S+)\s*", line.split("#")[0])
    if match:
        pins[canonicalize_name(match[1])] = Version(match[2])

problems = []
for text in project["dependencies"]:
    requirement = Requirement(text)
    name = canonicalize_name(requirement.name)
    floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    if not floors:
        problems.append(f"{requirement.name}: no >= floor in pyproject.toml")
    elif pins.get(name) != floors[0]:
        problems.append(f"{requirement.name}: floor {floors[0]}, floors.txt pins {pins.get(name)}")
for problem in problems:
    print(f".ci/floors.txt: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
