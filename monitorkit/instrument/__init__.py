"""Application metrics: counters, gauges, histograms, protocol and tool-run helpers, sent to the owner's file.

```python
from monitorkit import instrument

jobs = instrument.Counter("jobs_processed_total", "Jobs done", labelnames=["queue"])
instrument.start(db_path="data/monitorkit.duckdb")   # background sender, 1 s interval
jobs.labels(queue="a").inc()

with instrument.track(protocol="http", method="GET") as ex:
    ex.status = 200

@instrument.tool("resize_image")
def resize(path: str) -> None: ...
```

Importing this package loads neither DuckDB nor pyarrow: instrumented applications stay small.
"""

from monitorkit.errors import CardinalityLimitError, InvalidLabelError, InvalidMetricNameError, InvalidValueError
from monitorkit.instrument.blocks import OUTCOMES
from monitorkit.instrument.client import Sender, autostart, sender, start, stop
from monitorkit.instrument.executions import Outbox, outbox
from monitorkit.instrument.metrics import DEFAULT_BUCKETS, Counter, Gauge, Histogram, counter, gauge, histogram
from monitorkit.instrument.protocol import Exchange, track
from monitorkit.instrument.registry import REGISTRY, Registry
from monitorkit.instrument.tools import Execution, ToolRun, tool, tool_run

# The first metric created in the global registry starts the sender if settings say
# `instrument.autostart = true` (monitorkit.toml [instrument] or MONITORKIT_INSTRUMENT__AUTOSTART).
REGISTRY.on_first_register = autostart

__all__ = [
    "DEFAULT_BUCKETS",
    "OUTCOMES",
    "REGISTRY",
    "CardinalityLimitError",
    "Counter",
    "Exchange",
    "Execution",
    "Gauge",
    "Histogram",
    "InvalidLabelError",
    "InvalidMetricNameError",
    "InvalidValueError",
    "Outbox",
    "Registry",
    "Sender",
    "ToolRun",
    "counter",
    "gauge",
    "histogram",
    "outbox",
    "sender",
    "start",
    "stop",
    "tool",
    "tool_run",
    "track",
]
