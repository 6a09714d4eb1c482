-- Which messages could not be read, and why? (one row per reason, newest first)
SELECT reason, count() AS messages, max(dead_at) AS last_seen
FROM {db}.dead_letters FINAL
GROUP BY reason
ORDER BY last_seen DESC
