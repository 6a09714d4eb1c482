-- Which manual scorecard entries (AssessmentAdjusted) did the joint-meeting office make, by quarter and department?
SELECT quarter, dept, item, points, reason, source_dept, occurred_at, event_id
FROM {db}.assessment_adjustments
ORDER BY quarter DESC, dept, occurred_at
