"""Opening the store from a short-lived command without paying for numpy.

Kept apart from store/db.py, which imports sqlite-utils at import time: the CLI calls
`import_sqlite_utils_without_numpy()` first, then imports store/db.py. Only store/ imports
sqlite-utils (an import-linter contract), so this lives here and not in cli/.
"""

from __future__ import annotations

import sys


def import_sqlite_utils_without_numpy() -> None:
    """Import sqlite-utils without numpy, unless this process already has either.

    sqlite-utils imports numpy when it is installed (bm25s brings it) for one purpose: mapping
    numpy scalar types to column types when it creates a table from Python values. The CLI's
    commands never do that (the schema's migrations name their types), and numpy is a 100 ms
    import here, a third of `mail-gateway status`. Hidden, `import numpy` raises the
    ImportError sqlite-utils expects when numpy is absent; it is visible again right after.
    The daemon (`serve`) and the tests import sqlite-utils the ordinary way first.
    """
    if "sqlite_utils" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["numpy"]
