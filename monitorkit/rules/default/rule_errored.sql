-- name: rule_errored
-- kind: health
-- severity: warning
-- every: 30s
-- summary: Rule {{ rule }} is broken: {{ _error }}
-- description: The rule's file does not load, its SQL fails, returns the wrong columns or
--   runs past its time budget; the other rules keep running. Fix the file: it reloads by itself.
SELECT name AS rule, file, 1 AS value, error AS _error
FROM rules
WHERE state = 'errored' AND name <> 'rule_errored'
