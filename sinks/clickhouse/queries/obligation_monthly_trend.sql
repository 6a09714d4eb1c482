-- Month by month (month of the due time), how many obligations were met, late, missed or are open?
SELECT month, sum(total) AS total, sum(met) AS met, sum(late) AS late, sum(missed) AS missed, sum(open) AS open
FROM {db}.obligation_monthly
GROUP BY month
ORDER BY month
