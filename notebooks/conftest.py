"""What pytest collects in notebooks/: the notebooks (through nbval), never the helper scripts.

Run with ``pytest --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks/``.
"""

from __future__ import annotations

import os

collect_ignore = ["strip_outputs.py"]
collect_ignore_glob = [".ipynb_checkpoints/*"]

# Checked outputs must not depend on a developer's environment overrides: kernels inherit this
# process's environment, so drop them before any kernel starts (there is no monitorkit.toml here).
for key in [k for k in os.environ if k.startswith("MONITORKIT_")]:
    del os.environ[key]
os.environ["TZ"] = "UTC"
