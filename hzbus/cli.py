"""``hzbus``: the one console script. Thin: parse, build the adapters, hand on.

Each sub-command lives in ``hzbus/commands/<name>.py`` with ``register(subparsers)``;
modules are imported only when listed here, so ``hzbus --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from hzbus.errors import UserError
from hzbus.pipes import silence_stdout

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("infra", "simulate", "publish", "gate", "sink", "worker", "replay", "scorecard", "report", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hzbus",
        description="Huzhou enforcement coordination bus (湖政办发〔2016〕98号).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"hzbus.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    #: the command line is this process's own (the ``hzbus`` script, ``python -m hzbus.cli``), not
    #: a caller's in-process call: a command may then end the process itself once done
    args.own_process = argv is None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"hzbus {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"hzbus {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout stopped reading (`| head`): no traceback
        silence_stdout()
        return 1


if __name__ == "__main__":
    sys.exit(main())
