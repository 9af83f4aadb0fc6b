-- name: heartbeat_failing
-- kind: health
-- severity: critical
-- for: 30s
-- every: 30s
-- summary: {{ component }} {{ _problem }}
-- description: An application component reported itself failing with
--   monitorkit.rules.health.heartbeat(), or its heartbeat expired (no new one within its ttl).
--   The value is the age of the last heartbeat in seconds.
SELECT component, host, round(epoch(eval_time() - updated_at), 1) AS value,
       CASE WHEN updated_at + to_milliseconds(CAST(ttl_seconds * 1000 AS BIGINT)) < eval_time()
            THEN 'stopped sending heartbeats (ttl ' || ttl_seconds || ' s)'
            ELSE 'reports failing: ' || reason END AS _problem
FROM heartbeats
WHERE updated_at <= eval_time()
  AND (status = 'failing' OR updated_at + to_milliseconds(CAST(ttl_seconds * 1000 AS BIGINT)) < eval_time())
