-- How many obligations of each kind are open, met, late or missed, and which clause sets them?
SELECT kind, countIf(status = 'open') AS open, countIf(status = 'met') AS met,
       countIf(status = 'late') AS late, countIf(status = 'missed') AS missed, any(clause) AS clause
FROM {db}.obligations FINAL
GROUP BY kind
ORDER BY kind
