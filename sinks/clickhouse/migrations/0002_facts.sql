-- Facts computed by the obligation and correlation core (never re-derived in SQL).
-- Each table keeps the latest fact per id: ReplacingMergeTree(version) with version = the
-- Kafka offset of the fact (one id = one key = one partition, so offsets order its facts);
-- queries read them with FINAL. Times are stored in whole seconds, Asia/Shanghai.

-- Latest state of every obligation [domain.md: obligations]. due_quarter is the calendar
-- quarter of the due time, the scorecard's quarter [考评办法].
CREATE TABLE IF NOT EXISTS {db}.obligations
(
    obligation_id       String,
    kind                String,
    ref                 String,
    responsible_dept    String,
    started_at          DateTime('Asia/Shanghai'),
    due_at              DateTime('Asia/Shanghai'),
    due_quarter         String,
    status              String,
    fulfilled_at        Nullable(DateTime('Asia/Shanghai')),
    delay_working_days  Int32,
    provisional         UInt8,
    extended            UInt8,
    paused_working_days Int32,
    clause              String,
    rule_version        String,
    calendar_version    String,
    evaluated_at        DateTime('Asia/Shanghai'),
    version             UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY obligation_id;

-- Every alert raised and resolved, once per (dedup_key, event).
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    dedup_key        String,
    event            String,
    kind             String,
    obligation_id    String,
    obligation_kind  String,
    ref              String,
    responsible_dept String,
    due_at           DateTime('Asia/Shanghai'),
    at               DateTime('Asia/Shanghai'),
    status           String,
    clause           String,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (dedup_key, event);

-- Findings (incomplete transfer, urgent transfer without stop order); active = 0 once withdrawn.
CREATE TABLE IF NOT EXISTS {db}.findings
(
    finding_id String,
    kind       String,
    ref        String,
    dept       String,
    at         DateTime('Asia/Shanghai'),
    details    String,
    clause     String,
    active     UInt8,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY finding_id;

-- Approval–penalty correlations per (pseudonymised) subject; status active or withdrawn.
CREATE TABLE IF NOT EXISTS {db}.correlations
(
    correlation_id   String,
    kind             String,
    subject          String,
    domain           String,
    approval_ids     String,
    penalty_ids      String,
    case_ids         String,
    notify_dept      String,
    responsible_dept String,
    became_true_at   DateTime('Asia/Shanghai'),
    status           String,
    clause           String,
    rule_version     String,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY correlation_id;
