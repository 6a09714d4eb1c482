-- How many distinct events of each type are on record, from how many departments?
SELECT type, count() AS events, uniqExact(source_dept) AS departments
FROM {db}.events FINAL
GROUP BY type
ORDER BY events DESC, type
