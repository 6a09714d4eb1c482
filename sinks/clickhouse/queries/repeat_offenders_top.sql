-- Which subjects are on the key-supervision list (>= 3 penalties in 12 months), most penalties first?
-- (Subjects are pseudonymised for personal ID numbers; organisation codes are kept.)
SELECT subject, penalties, quarter, notify_dept, became_true_at, penalty_ids
FROM {db}.repeat_offenders
ORDER BY penalties DESC, became_true_at, subject
LIMIT 50
