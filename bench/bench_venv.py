"""Measure the app's runtime venv: its size on disk and whether anything in it resolves to CUDA or torch.

Run from the repository root (needs the package registry; takes a few minutes)::

    python3.11 bench/bench_venv.py [--requirements requirements.txt]

1. ``pip install --dry-run --report`` resolves the requirements on this Linux x86_64 machine's pip, as a user
   would, and the report's packages are checked for CUDA builds (``nvidia-*``, ``*cuda*``, ``*cudnn*``,
   ``triton``) and torch (target: none);
2. a fresh venv is created in a temporary folder, the requirements installed into it, and its size measured
   (target: at most 700 MB), with the largest packages listed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUDA_PATTERN = re.compile(r"^(nvidia-.*|.*cuda.*|.*cudnn.*|.*cublas.*|triton|torch|torchvision)$", re.IGNORECASE)
LIMIT_MB = 700


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def tree_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    """Measure and print; exit status 0 (the numbers are the result, not a pass/fail)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    args = parser.parse_args(argv)
    requirements = args.requirements.resolve()

    with tempfile.TemporaryDirectory(prefix="venv-bench-") as tmp:
        venv = Path(tmp) / "venv"
        run(sys.executable, "-m", "venv", str(venv))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
        report_path = Path(tmp) / "report.json"
        run(*pip, "install", "--dry-run", "--ignore-installed", "--report", str(report_path), "-r", str(requirements))
        report = json.loads(report_path.read_text("utf-8"))
        resolved = sorted((item["metadata"]["name"].lower(), item["metadata"]["version"]) for item in report["install"])
        flagged = [f"{name}=={version}" for name, version in resolved if CUDA_PATTERN.match(name)]
        print(f"1. pip install --dry-run --report -r {requirements.name}: {len(resolved)} packages")
        print("   " + ", ".join(f"{n}=={v}" for n, v in resolved))
        print(f"   CUDA or torch packages: {', '.join(flagged) if flagged else 'none'}   (target: none)")

        run(*pip, "install", "-r", str(requirements))
        if requirements.name == "requirements.txt":  # as scripts/_venv.sh does: the OCR package without its GUI OpenCV
            run(*pip, "install", "--no-deps", "-r", str(ROOT / "requirements-ocr.txt"))
        total = tree_size(venv)
        site = next((venv / "lib").glob("python*/site-packages"))
        sizes: dict[str, int] = {}
        for entry in site.iterdir():
            key = re.sub(r"(-[0-9].*)?\.dist-info$", "", entry.name).lower()
            sizes[key] = sizes.get(key, 0) + (tree_size(entry) if entry.is_dir() else entry.stat().st_size)
        print(f"2. fresh venv from {requirements.name}: {total / 1e6:.0f} MB on disk   (target <= {LIMIT_MB} MB)")
        for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:10]:
            print(f"   {name:<28} {size / 1e6:7.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
