-- The read-only analyst user on a current ClickHouse (SQL access control, 20.x and later), for
-- servers that `hzbus infra` does not configure. docs/security.md. Run as an administrator:
--   clickhouse-client --multiquery < this file, after replacing {user}, {password} and {db}.
-- {db} (the bus's database) holds pseudonymised personal ids only; the raw dead letters are in
-- {db}_restricted, which is not granted [信息资源共享机制 五]. readonly = 1: no INSERT, ALTER,
-- DROP, CREATE, SET or table functions. tests/unit/test_analyst_access_current_engine.py runs the
-- GRANT on a current engine (chdb: users from a users.xml, whose <grants> take these statements).
CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY '{password}' SETTINGS readonly = 1;
GRANT SELECT ON {db}.* TO {user};
