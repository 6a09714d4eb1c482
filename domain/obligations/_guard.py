"""Refuse compiled modules of this package built from other sources than those in the tree
(``hzbus/native.py``: they would run old code); imported first by the package."""

from hzbus.native import guard

guard()
