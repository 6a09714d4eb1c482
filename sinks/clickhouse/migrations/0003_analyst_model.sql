-- The analysts' model over the fact tables (docs/analysts.md, table by table).
-- Plain views over the ReplacingMergeTree fact tables read with FINAL: a materialized view
-- would see every version of an obligation (open, then missed, then late) and count it three
-- times; the latest state per id is what FINAL gives. Statuses, due times and delays are the
-- core's facts as stored by the sink: no deadline is derived here.
-- Runs on ClickHouse 18.16 (no window functions, LowCardinality, DateTime64) and current releases.

-- One row per obligation: its latest state, with the month of its due time.
CREATE VIEW IF NOT EXISTS {db}.obligations_latest AS
SELECT
    obligation_id, kind, ref, responsible_dept, started_at, due_at, due_quarter,
    toYYYYMM(due_at) AS due_month, status, fulfilled_at, delay_working_days, provisional,
    extended, paused_working_days, clause, rule_version, calendar_version, evaluated_at
FROM {db}.obligations FINAL;

-- Per quarter (of the due time) x department x obligation kind: counts by status, on-time
-- rate (met / decided, NULL when nothing is decided yet), median and p90 delay in working days
-- over the decided obligations (met = 0), and the median delay of the late and missed ones.
CREATE VIEW IF NOT EXISTS {db}.obligation_stats AS
SELECT
    due_quarter AS quarter,
    responsible_dept AS dept,
    kind,
    count() AS total,
    countIf(status = 'met') AS met,
    countIf(status = 'late') AS late,
    countIf(status = 'missed') AS missed,
    countIf(status = 'open') AS open,
    countIf(status != 'open') AS decided,
    if(countIf(status != 'open') = 0, NULL, countIf(status = 'met') / countIf(status != 'open')) AS on_time_rate,
    quantileExactIf(0.5)(delay_working_days, status != 'open') AS median_delay_wd,
    quantileExactIf(0.9)(delay_working_days, status != 'open') AS p90_delay_wd,
    quantileExactIf(0.5)(delay_working_days, status IN ('late', 'missed')) AS median_overdue_delay_wd,
    maxIf(delay_working_days, status IN ('late', 'missed')) AS max_delay_wd
FROM {db}.obligations FINAL
GROUP BY due_quarter, responsible_dept, kind;

-- Per quarter x department, all kinds together (percentiles cannot be merged from the view above).
CREATE VIEW IF NOT EXISTS {db}.department_stats AS
SELECT
    due_quarter AS quarter,
    responsible_dept AS dept,
    count() AS total,
    countIf(status = 'met') AS met,
    countIf(status = 'late') AS late,
    countIf(status = 'missed') AS missed,
    countIf(status = 'open') AS open,
    countIf(status != 'open') AS decided,
    if(countIf(status != 'open') = 0, NULL, countIf(status = 'met') / countIf(status != 'open')) AS on_time_rate,
    quantileExactIf(0.5)(delay_working_days, status != 'open') AS median_delay_wd,
    quantileExactIf(0.9)(delay_working_days, status != 'open') AS p90_delay_wd
FROM {db}.obligations FINAL
GROUP BY due_quarter, responsible_dept;

-- Per month of the due time x quarter x kind: the trend of met / late / missed.
CREATE VIEW IF NOT EXISTS {db}.obligation_monthly AS
SELECT
    toYYYYMM(due_at) AS month,
    due_quarter AS quarter,
    kind,
    count() AS total,
    countIf(status = 'met') AS met,
    countIf(status = 'late') AS late,
    countIf(status = 'missed') AS missed,
    countIf(status = 'open') AS open
FROM {db}.obligations FINAL
GROUP BY month, due_quarter, kind;

-- Approval-penalty correlations that hold (latest state, withdrawn ones left out), with the
-- quarter of the moment they became true and the number of approvals and penalties involved.
CREATE VIEW IF NOT EXISTS {db}.correlations_active AS
SELECT
    correlation_id, kind, subject, domain, approval_ids, penalty_ids, case_ids, notify_dept,
    responsible_dept, became_true_at,
    concat(toString(toYear(became_true_at)), 'Q', toString(toQuarter(became_true_at))) AS quarter,
    if(approval_ids = '', 0, length(splitByChar(',', approval_ids))) AS approvals,
    if(penalty_ids = '', 0, length(splitByChar(',', penalty_ids))) AS penalties,
    clause
FROM {db}.correlations FINAL
WHERE status = 'active';

-- Repeat offenders (重点监管名单, policy >= 3 penalties in 12 months) [协作机制 三(二)3].
CREATE VIEW IF NOT EXISTS {db}.repeat_offenders AS
SELECT correlation_id, subject, penalties, penalty_ids, case_ids, notify_dept, became_true_at, quarter, clause
FROM {db}.correlations_active
WHERE kind = 'repeat_offender';

-- The joint-meeting office's manual scorecard entries (AssessmentAdjusted), from the raw events.
CREATE VIEW IF NOT EXISTS {db}.assessment_adjustments AS
SELECT
    event_id,
    source_dept,
    occurred_at,
    visitParamExtractString(payload, 'dept') AS dept,
    visitParamExtractString(payload, 'quarter') AS quarter,
    visitParamExtractString(payload, 'item') AS item,
    visitParamExtractFloat(payload, 'points') AS points,
    visitParamExtractString(payload, 'reason') AS reason
FROM {db}.events FINAL
WHERE type = 'AssessmentAdjusted';
