-- name: protocol_error_rate
-- kind: error
-- severity: warning
-- for: 2m
-- keep_firing_for: 2m
-- every: 1m
-- summary: {{ protocol }} {{ method }} on {{ host }}: {{ value }}% of requests failed in 5 min ({{ _errors }} of {{ _requests }})
-- description: More than 5% of the requests of a protocol and method (protocol_errors_total over
--   protocol_requests_total, summed over statuses and processes) failed in the last 5 minutes;
--   at least 100 requests are needed.
WITH counts AS (
    -- protocol_requests_total and protocol_errors_total in one scan of the window
    SELECT host, labels['protocol'] AS protocol, labels['method'] AS method,
           sum(increase) FILTER (WHERE name = 'protocol_requests_total') AS requests,
           sum(increase) FILTER (WHERE name = 'protocol_errors_total') AS errors
    FROM counter_window('protocol_%s_total', eval_time() - INTERVAL 5 MINUTE, eval_time())
    GROUP BY ALL
)
SELECT host, protocol, method, round(100 * errors / requests, 1) AS value, round(errors) AS _errors,
       round(requests) AS _requests
FROM counts
WHERE requests >= 100 AND errors / requests > 0.05
