"""The Avro contract of the bus (``schemas/avro/*.avsc``) and the one codec (``schemas.codec``).

Nothing is imported or read here: ``from schemas import codec`` loads the schemas lazily.
"""

from hzbus.native import guard as _guard

_guard()  # a compiled module older than its source would run old code (hzbus/native.py)
