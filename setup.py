"""The C extension (the common OTLP request read in C: src/alephant_otel/_wirec.c). Everything
else about the package is in pyproject.toml. Optional: without a C compiler the install still
succeeds and requests are read by wire.parse (tests/test_wire_native.py says the reader is
missing)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("alephant_otel._wirec", ["src/alephant_otel/_wirec.c"], optional=True)])
