"""The pure core: events, departments, the working-day calendar, obligations, correlation,
scorecard. Standard library only; some modules are compiled with mypyc when built
(``hzbus/native.py``: the calendar, the obligation engine)."""

from hzbus.native import guard as _guard

_guard()  # a compiled module older than its source would run old code (hzbus/native.py)
