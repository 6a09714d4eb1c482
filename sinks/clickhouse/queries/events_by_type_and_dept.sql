-- How many distinct events has each department published, by event type?
-- (FINAL collapses re-deliveries and re-publications of the same event_id.)
SELECT type, source_dept, count() AS events
FROM {db}.events FINAL
GROUP BY type, source_dept
ORDER BY type, source_dept
