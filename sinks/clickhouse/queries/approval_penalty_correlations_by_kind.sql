-- How many approval-penalty correlations hold, by quarter, kind and the department they are addressed to?
SELECT quarter, kind, notify_dept, count() AS correlations, uniqExact(subject) AS subjects
FROM {db}.correlations_active
GROUP BY quarter, kind, notify_dept
ORDER BY quarter DESC, kind, correlations DESC, notify_dept
