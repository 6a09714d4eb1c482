-- How many distinct events has each department published, and when was its latest?
SELECT source_dept, count() AS events, uniqExact(type) AS event_types, max(published_at) AS last_published
FROM {db}.events FINAL
GROUP BY source_dept
ORDER BY events DESC, source_dept
