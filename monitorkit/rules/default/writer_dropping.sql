-- name: writer_dropping
-- kind: error
-- severity: warning
-- every: 1m
-- summary: monitorkit dropped {{ value }} samples on {{ host }} in 5 min ({{ reason }})
-- description: The writer's queue overflowed or a batch failed to commit
--   (monitorkit_samples_dropped_total rose); data is missing from the database.
SELECT host, labels['reason'] AS reason, increase AS value
FROM counter_window('monitorkit_samples_dropped_total', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE increase > 0
