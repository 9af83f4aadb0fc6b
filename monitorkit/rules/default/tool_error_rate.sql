-- name: tool_error_rate
-- kind: error
-- severity: warning
-- for: 5m
-- keep_firing_for: 5m
-- every: 1m
-- summary: Tool {{ tool }} on {{ host }} fails {{ value }}% of its runs ({{ _failed }} of {{ _runs }} in 15 min)
-- description: More than 20% of the tool's runs in the last 15 minutes ended in error or
--   timeout (tool_runs_total{tool,outcome}), with at least 10 runs and 4 failures: a few
--   failures of a tool run rarely (at night, say) are not a trend.
WITH runs AS (
    SELECT host, labels['tool'] AS tool, labels['outcome'] AS outcome, increase
    FROM counter_window('tool_runs_total', eval_time() - INTERVAL 15 MINUTE, eval_time())
), per_tool AS (
    SELECT host, tool, sum(increase) AS runs,
           coalesce(sum(increase) FILTER (WHERE outcome IN ('error', 'timeout')), 0) AS failed
    FROM runs
    GROUP BY host, tool
)
SELECT host, tool, round(100 * failed / runs, 1) AS value, round(runs) AS _runs, round(failed) AS _failed
FROM per_tool
WHERE runs >= 10 AND failed >= 4 AND failed / runs > 0.20
