-- Which messages could not be read, and why? (one row per reason, newest first)
-- The operator's query: dead letters keep raw bytes, so they live in {db}_restricted, which the
-- analyst user cannot read (docs/security.md).
SELECT reason, count() AS messages, max(dead_at) AS last_seen
FROM {db}_restricted.dead_letters FINAL
GROUP BY reason
ORDER BY last_seen DESC
