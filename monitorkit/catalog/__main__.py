"""Print docs/metrics.md: ``python -m monitorkit.catalog > docs/metrics.md``."""

import sys

from monitorkit.catalog.docs import render_markdown

sys.stdout.write(render_markdown())
