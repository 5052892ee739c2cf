"""Server memory taken by zip uploads on the Batch page, before and after issue 10, side by side.

Run: .venv/bin/python bench/bench_zip_memory.py [--before REV]

Each case runs in a fresh Python process, which builds its zips first, then resets the
kernel's peak-RSS mark (/proc/self/clear_refs) and does what the Batch page does with the
uploads: read them into batch items and hash every item (``run_batch``'s first step). It
prints the peak RSS above the starting point, what is still resident while the sessions keep
their intakes, and after they end (intakes dropped, garbage collected).

"before" is ``extract_images`` of the archive module at REV (default: the commit before
issue 10's work), which decompressed every member into the intake; "after" is today's
``scan_archive`` with members read lazily, under a ``ByteBudget`` as ui/batch.py uses it.
Cases, from the hostile corpus of issue 10: one zip of 476 members of 1 MiB of zeros
(about 0.5 MB), four such zips in one upload, three sessions with one each; a zip built to
stay just under the 100:1 ratio (accepted, so it shows the lazy reading), and a legitimate
zip of 100 incompressible 1 MiB "photos".
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEFORE_REV = "6b8c001"
MiB = 1024 * 1024
CASES = {
    "hostile zip (476 x 1 MiB zeros)": {"zips": 1, "sessions": 1, "members": 476, "random": False},
    "4 hostile zips in one upload": {"zips": 4, "sessions": 1, "members": 476, "random": False},
    "3 sessions, 1 hostile zip each": {"zips": 1, "sessions": 3, "members": 476, "random": False},
    "zip just under the ratio (476 x 1 MiB at ~90:1)": {"zips": 1, "sessions": 1, "members": 476, "random": "part"},
    "legit zip (100 x 1 MiB photos)": {"zips": 1, "sessions": 1, "members": 100, "random": True},
}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _make_zip(members: int, random: bool | str, seed: int) -> bytes:
    buffer = io.BytesIO()
    compression = zipfile.ZIP_STORED if random is True else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for i in range(members):
            if random == "part":  # enough noise to stay under the 100:1 ratio, so the zip is accepted
                body = os.urandom(11 * 1024) + b"\0" * (MiB - 11 * 1024)
            else:
                body = os.urandom(MiB) if random else b"\0" * MiB
            archive.writestr(f"photos/img{seed}_{i:03d}.jpg" if random else f"z{i:03d}.bmp", body)
    return buffer.getvalue()


def _old_module(rev: str):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:tagging/batch/_archive.py"],
                            check=True, capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("archive_before", handle.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _session_before(module, uploads: list[bytes]) -> list:
    from tagging.batch import BatchItem

    items = []
    for n, data in enumerate(uploads):
        contents = module.extract_images(data, f"upload{n}.zip")
        items.extend(BatchItem(name, body) for name, body in contents.images)  # hashed on creation
    return items


def _session_after(budget, uploads: list[bytes]) -> list:
    from tagging.batch import ArchiveError, BatchItem, BudgetExceededError, scan_archive

    items = []
    try:
        holds = budget.reserve_all([len(data) for data in uploads])
    except BudgetExceededError:
        return items
    for n, (data, hold) in enumerate(zip(uploads, holds, strict=True)):
        try:
            index = scan_archive(data, f"upload{n}.zip", keep=hold)
        except ArchiveError:
            continue  # refused as a zip bomb: the page shows the error, nothing is kept
        items.extend(BatchItem(name, source=member) for name, member in index.members)
    for item in items:
        item.sha256  # noqa: B018 - run_batch hashes every item first, one member at a time
    return items


def run_case(name: str, mode: str, rev: str) -> dict:
    spec = CASES[name]
    uploads_per_session = [
        [_make_zip(spec["members"], spec["random"], seed=s * 10 + z) for z in range(spec["zips"])]
        for s in range(spec["sessions"])
    ]
    module = _old_module(rev) if mode == "before" else None
    from tagging.batch import ByteBudget

    budget = ByteBudget(1024 * MiB)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    start = _status("VmRSS")
    sessions = [
        _session_before(module, uploads) if mode == "before" else _session_after(budget, uploads)
        for uploads in uploads_per_session
    ]
    held = _status("VmRSS") - start
    images = sum(len(s) for s in sessions)
    peak = _status("VmHWM") - start
    del sessions
    gc.collect()
    after_end = _status("VmRSS") - start
    return {"peak": peak, "held": held, "after_end": after_end, "images": images, "budget_left": budget.held}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE_REV, help="git revision of the code before the change")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.mode, args.before)))
        return
    print(f"{'case':48} {'':6} {'images':>6} {'peak MB':>8} {'held MB':>8} {'after end MB':>13}")
    for name in CASES:
        row = {}
        for mode in ("before", "after"):
            out = subprocess.run([sys.executable, __file__, "--case", name, "--mode", mode, "--before", args.before],
                                 check=True, capture_output=True, text=True).stdout
            row[mode] = json.loads(out)
            r = row[mode]
            print(f"{name if mode == 'before' else '':48} {mode:6} {r['images']:>6} {r['peak'] / MiB:>8.1f} "
                  f"{r['held'] / MiB:>8.1f} {r['after_end'] / MiB:>13.1f}")
        ratio = row["before"]["peak"] / max(row["after"]["peak"], 1)
        print(f"{'':48} peak before / after: {ratio:,.0f}x")


if __name__ == "__main__":
    main()
