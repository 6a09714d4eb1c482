"""What Faust itself allows on this machine: a trivial agent over the worker's source topics.

One agent, concurrency 1, raw bytes, counting only (no decoding, no tables, nothing produced),
with the worker's transport settings (commit every 1,000 messages or 1 s, earliest offsets). The
ceiling of any Faust worker that reads every source record once through ``stream.events()``;
``benchmarks.bench_worker`` runs it as its third figure, timed like the worker (first commit
to no lag). Run alone: ``python -m benchmarks.faust_ceiling --prefix P`` (group ``P-worker-faustceiling``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from typing import Any

from hzbus.config import load_settings
from hzbus.topics import event_topics


def build_ceiling_app(bootstrap: str, prefix: str, datadir: str) -> Any:
    import faust

    app = faust.App(
        f"{prefix}-worker-faustceiling",  # cleaned up with the worker's group and topics
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=datadir,
        web_enabled=False,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    sources = app.topic(*event_topics(prefix), key_type=bytes, value_type=bytes)
    counted = {"n": 0}

    @app.agent(sources, concurrency=1)
    async def count(stream: Any) -> None:
        async for _ev in stream.events():
            counted["n"] += 1

    return app


def main() -> None:
    import faust

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    settings = load_settings()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="faustceiling-") as datadir:
        app = build_ceiling_app(settings.kafka_bootstrap, args.prefix, datadir)
        worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
        worker.spinner = None
        worker.execute_from_commandline()


if __name__ == "__main__":
    main()
