-- name: heartbeats
-- type: health
-- every: 30s
-- summary: Every component that sends heartbeats: failing once its ttl expired.
SELECT component,
       CASE WHEN updated_at + to_milliseconds(CAST(ttl_seconds * 1000 AS BIGINT)) < eval_time() THEN 'failing'
            ELSE status END AS status,
       CASE WHEN updated_at + to_milliseconds(CAST(ttl_seconds * 1000 AS BIGINT)) < eval_time()
            THEN 'heartbeat expired: last at ' || strftime(updated_at, '%Y-%m-%d %H:%M:%S UTC')
                 || ', ttl ' || ttl_seconds || ' s'
            ELSE reason END AS reason
FROM heartbeats
WHERE updated_at <= eval_time()
