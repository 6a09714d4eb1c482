-- How often did each department meet its deadlines in each quarter (on-time rate, median and p90 delay in working days)?
-- (Quarter = calendar quarter of the due time; on_time_rate = met / decided, NULL when nothing is decided yet.)
SELECT quarter, dept, total, met, late, missed, open, decided, on_time_rate, median_delay_wd, p90_delay_wd
FROM {db}.department_stats
ORDER BY quarter DESC, dept
