"""``python -m lookalike.bench [options]``: the same as ``lookalike bench``."""

from .cli import main

raise SystemExit(main())
