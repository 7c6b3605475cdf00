"""Repository-wide test set-up: the registry snapshot that reading commands use goes to a throw-away folder,
never the user's ~/.cache (subprocesses inherit it)."""

import os
import tempfile

os.environ.setdefault("HARBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="harbench-test-cache-"))
