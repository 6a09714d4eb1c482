-- How many obligations of each kind were met, late, missed or still open in each quarter?
SELECT quarter, kind, sum(total) AS total, sum(met) AS met, sum(late) AS late, sum(missed) AS missed,
       sum(open) AS open
FROM {db}.obligation_stats
GROUP BY quarter, kind
ORDER BY quarter DESC, kind
