"""Non-finite values travel as Prometheus carries them: +Inf and NaN in state, templates, the CLI's JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cli_helpers import invoke
from rules_helpers import T0, engine_for, rule_settings, trigger, write_rule

from monitorkit.store import Store

SQL = """SELECT host, labels['key'] AS key, last / (last - 80) AS value
FROM gauge_window('trigger', eval_time() - INTERVAL 1 MINUTE, eval_time()) WHERE last > 50"""


def refuse(constant: str) -> None:
    raise ValueError(f"not JSON: {constant}")


def test_an_infinite_value_is_kept_rendered_and_listed_as_strict_json(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "ratio", SQL, summary="ratio {{ value }} ({{ $value }})")
    db = tmp_path / "m.duckdb"
    with Store(db, settings=rule_settings(tmp_path / "rules")) as store, engine_for(store) as engine:
        store.write([trigger(T0, 80, key="inf"), trigger(T0, 0.0, key="low")])
        store.flush()
        engine.run(T0)
        [(value, summary)] = store.query("SELECT value, summary FROM alerts")
    assert math.isinf(value) and value > 0  # not NULL: 80 / 0 is +Inf, as in PromQL
    assert summary == "ratio +Inf (+Inf)"
    out = invoke(["alerts", "list", "--json"], db=db)
    assert out.exit_code == 0, out.output
    [alert] = json.loads(out.output, parse_constant=refuse)  # strict JSON: no Infinity or NaN tokens
    assert alert["value"] == "+Inf" and alert["summary"] == "ratio +Inf (+Inf)"
