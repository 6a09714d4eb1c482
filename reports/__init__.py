"""The read side for people: scorecard and report data from ClickHouse or from an event file,
the published-scorecard stores, and the self-contained HTML report (server-side SVG, no network).
The numbers come from the pure core (``domain.obligations``, ``domain.scorecard``) or from the
facts it stored; nothing here derives a deadline or a status."""
