"""The child process of an index rebuild (see builds.py): ``python -m lookalike.server.build_worker DB NAME SPEC``.

SPEC is JSON ``{"type": ..., "params": {...}, "default": true}``.  It opens the collection on its own, builds the
index (``Collection.create_index``: the config commits in SQLite and the files are saved before it returns), and
prints one JSON line: the index config with ``build_s``, or ``{"error": {"type", "message"}}`` with exit status 2.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from ..database import Database
    from ..errors import LookalikeError

    db_path, name, spec_text = argv
    try:
        spec = json.loads(spec_text)
        with Database(db_path, create=False) as db:
            col = db.get_collection(name)
            result = col.create_index(spec["type"], default=bool(spec.get("default", True)), **spec["params"])
    except LookalikeError as exc:
        print(json.dumps({"error": {"type": exc.type_name, "message": str(exc)}}))
        return 2
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
