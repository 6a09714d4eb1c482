-- Raw events: one row per event_id in query results.
-- ReplacingMergeTree collapses re-deliveries and re-publications of the same event_id
-- (same sorting key) at merge time; queries read it with FINAL. The version keeps the
-- earliest publication (largest dedup_version = earliest broker append time).
-- Runs on ClickHouse 18.16 and current releases (no LowCardinality, DateTime64, TTL).
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id        String,
    type            String,
    source_dept     String,
    occurred_at     DateTime('Asia/Shanghai'),
    recorded_at     DateTime('Asia/Shanghai'),
    published_at    DateTime('Asia/Shanghai'),
    ref_id          String,
    subject_id      String,
    payload         String,
    kafka_topic     String,
    kafka_partition UInt16,
    kafka_offset    UInt64,
    ingested_at     DateTime('Asia/Shanghai'),
    dedup_version   UInt64
)
ENGINE = ReplacingMergeTree(dedup_version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (type, event_id);

-- Messages that did not decode or validate, as kept on the dead-letter topic.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    kafka_topic     String,
    kafka_partition UInt16,
    kafka_offset    UInt64,
    reason          String,
    key             String,
    value_base64    String,
    dead_at         DateTime('Asia/Shanghai')
)
ENGINE = ReplacingMergeTree()
ORDER BY (kafka_topic, kafka_partition, kafka_offset);
