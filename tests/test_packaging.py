"""``pip install .`` gives the ``tagging`` package with its data and the ``tagging`` command."""

from __future__ import annotations

import importlib
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_console_command_and_package_data_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, function = project["project"]["scripts"]["tagging"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    patterns = project["tool"]["setuptools"]["package-data"]["tagging.embedded"]
    data = ROOT / "tagging" / "embedded"
    shipped = [p.relative_to(data).as_posix() for p in (data / "data").iterdir()]
    assert shipped and all(any(fnmatch(name, pattern) for pattern in patterns) for name in shipped)
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
