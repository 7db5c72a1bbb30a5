"""The folder where several processes count their metrics: set up without importing
prometheus_client, which reads PROMETHEUS_MULTIPROC_DIR once, when it is first imported."""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(state_dir: Path, clean: bool = True) -> Path:
    """PROMETHEUS_MULTIPROC_DIR when set, else STATE_DIR/metrics: made, emptied of an earlier
    run's counts (unless `clean` is false), and named in the environment of what starts next."""
    folder = Path(os.environ.get(MULTIPROCESS_ENV) or state_dir.resolve() / "metrics")
    folder.mkdir(parents=True, exist_ok=True)
    if clean:
        for stale in folder.glob("*.db"):  # counts of an earlier run would be summed with ours
            stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(folder)
    return folder
