-- Published quarterly scorecards (hzbus scorecard close QUARTER) and their restatements.
-- A published row is never changed: the earliest publication of (quarter, dept) wins the merge
-- (version = 2^63-1 - publication epoch seconds). A later fact that changes a closed quarter adds
-- restatement rows (revision 1, 2, ...). Scores are computed by domain.scorecard, not in SQL.

CREATE TABLE IF NOT EXISTS {db}.scorecard_published
(
    quarter         String,
    dept            String,
    dept_name       String,
    assessed        UInt8,
    rank            UInt16,
    score           Float64,
    organisation    Float64,
    cooperation     Float64,
    supervision     Float64,
    deducted        Float64,
    obligation_ids  Array(String),
    adjustment_ids  Array(String),
    department      String,
    as_of           DateTime('Asia/Shanghai'),
    published_at    DateTime('Asia/Shanghai'),
    policy_version  String,
    source          String,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (quarter, dept);

CREATE TABLE IF NOT EXISTS {db}.scorecard_restatements
(
    quarter         String,
    revision        UInt32,
    dept            String,
    old_score       Float64,
    new_score       Float64,
    obligation_ids  Array(String),
    event_ids       Array(String),
    why             String,
    change          String,
    as_of           DateTime('Asia/Shanghai'),
    restated_at     DateTime('Asia/Shanghai')
)
ENGINE = ReplacingMergeTree()
ORDER BY (quarter, revision, dept);

-- The official score of every assessed unit of a closed quarter: the published score, or the
-- new score of its latest restatement.
CREATE VIEW IF NOT EXISTS {db}.scorecard_official AS
SELECT q AS quarter, d AS dept, argMax(s, r) AS score, max(r) AS revision
FROM
(
    SELECT quarter AS q, dept AS d, score AS s, toUInt32(0) AS r FROM {db}.scorecard_published FINAL WHERE assessed = 1
    UNION ALL
    SELECT quarter AS q, dept AS d, new_score AS s, revision AS r FROM {db}.scorecard_restatements FINAL
)
GROUP BY q, d;
