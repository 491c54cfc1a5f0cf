"""``python -m elexirion_app``: the command line (see ``elexirion_app.cli``)."""

from __future__ import annotations

from elexirion_app.cli import main

raise SystemExit(main())
