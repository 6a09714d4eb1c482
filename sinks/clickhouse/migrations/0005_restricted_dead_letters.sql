-- Dead letters keep the original bytes of a record that could not be used, so a personal ID
-- number in one is in clear. From here on they live in {db}_restricted, a database the read-only
-- analyst user cannot open; {db} holds pseudonymised personal ids only [信息资源共享机制 五]
-- (docs/security.md). The sink moves the rows of the old {db}.dead_letters here and drops it
-- (sinks/clickhouse/dead_letters.py). Same columns and key as in 0001.
CREATE DATABASE IF NOT EXISTS {db}_restricted;

CREATE TABLE IF NOT EXISTS {db}_restricted.dead_letters
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
