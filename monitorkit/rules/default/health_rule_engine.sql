-- name: rule_engine
-- type: health
-- every: 30s
-- summary: The rule engine: degraded while any rule is errored (each backs off until its next try).
SELECT 'rule_engine' AS component,
       CASE WHEN count(*) FILTER (WHERE state = 'errored') > 0 THEN 'degraded' ELSE 'ok' END AS status,
       CASE WHEN count(*) FILTER (WHERE state = 'errored') > 0
            THEN 'errored: ' || string_agg(
                     name || CASE WHEN retry_at IS NOT NULL
                                  THEN ' (backing off after ' || failures || ' failures, '
                                       || coalesce(lane, 'inline') || ' lane)'
                                  ELSE '' END,
                     ', ' ORDER BY name) FILTER (WHERE state = 'errored')
            ELSE 'every rule evaluates' END AS reason
FROM rules
