-- How many events happened per business day (Asia/Shanghai), by event type?
SELECT toDate(occurred_at) AS day, type, count() AS events
FROM {db}.events FINAL
GROUP BY day, type
ORDER BY day, type
