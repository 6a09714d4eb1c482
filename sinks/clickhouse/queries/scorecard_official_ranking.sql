-- What is each assessed unit's official score in every closed quarter (published, or as last restated)?
SELECT quarter, dept, score, revision
FROM {db}.scorecard_official
ORDER BY quarter DESC, score DESC, dept
