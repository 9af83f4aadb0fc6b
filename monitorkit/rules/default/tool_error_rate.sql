-- name: tool_error_rate
-- kind: error
-- severity: warning
-- for: 5m
-- keep_firing_for: 5m
-- every: 1m
-- summary: Tool {{ tool }} on {{ host }} fails {{ value }}% of its runs ({{ _runs }} runs in 10 min)
-- description: More than 10% of the tool's runs in the last 10 minutes ended in error or
--   timeout (tool_runs_total{tool,outcome}); at least 10 runs are needed.
WITH runs AS (
    SELECT host, labels['tool'] AS tool, labels['outcome'] AS outcome, increase
    FROM counter_window('tool_runs_total', eval_time() - INTERVAL 10 MINUTE, eval_time())
), per_tool AS (
    SELECT host, tool, sum(increase) AS runs,
           coalesce(sum(increase) FILTER (WHERE outcome IN ('error', 'timeout')), 0) AS failed
    FROM runs
    GROUP BY host, tool
)
SELECT host, tool, round(100 * failed / runs, 1) AS value, round(runs) AS _runs
FROM per_tool
WHERE runs >= 10 AND failed / runs > 0.10
