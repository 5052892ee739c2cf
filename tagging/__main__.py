"""``python -m tagging``: the command line (see ``tagging.cli``)."""

from __future__ import annotations

from tagging.cli import main

raise SystemExit(main())
