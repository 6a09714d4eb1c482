-- Which closed quarters were restated, for which departments, from which score to which, and why?
SELECT quarter, revision, dept, old_score, new_score, why, obligation_ids, restated_at
FROM {db}.scorecard_restatements FINAL
ORDER BY quarter DESC, revision, dept
