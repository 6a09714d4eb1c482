-- For each quarter, department and obligation kind: counts by status, on-time rate, median and p90 delay (working days)?
SELECT quarter, dept, kind, total, met, late, missed, open, on_time_rate, median_delay_wd, p90_delay_wd,
       median_overdue_delay_wd, max_delay_wd
FROM {db}.obligation_stats
ORDER BY quarter DESC, dept, kind
