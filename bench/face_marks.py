"""Face boxes marked by hand on the portraits of the evaluation set, before any detector ran on them.

Marked by a person reading a 16/20 px grid drawn over each photo: cheek to cheek, forehead (below hair or cap)
to chin, in pixels of the EXIF-oriented full-size photo: (xmin, ymin, xmax, ymax). bench/bench_analysis.py
compares the offline detector's boxes with these (the target: within 4% of the image's size).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (where the photo is found, relative to ROOT or inside an installed wheel, boxes)
PORTRAITS: dict[str, tuple[str, list[tuple[int, int, int, int]]]] = {
    # samples/astronaut.jpg (scikit-image's, CC0), 512x512
    "astronaut": ("samples/astronaut.jpg", [(172, 76, 250, 160)]),
    # matplotlib's mpl-data/sample_data/grace_hopper.jpg (US Navy, public domain), 512x600
    "grace_hopper": ("matplotlib:mpl-data/sample_data/grace_hopper.jpg", [(175, 150, 345, 330)]),
}
