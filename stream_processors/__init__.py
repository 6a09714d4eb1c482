from hzbus.native import guard as _guard

_guard()  # a compiled module older than its source would run old code (hzbus/native.py)
