"""Compiled parts of the package; everything else about it is in pyproject.toml.

- The C reader of OTLP requests (src/alephant_otel/_wirec.c).
- The per-span Python modules (COMPILED), compiled by Cython as they are: the same code, run
  without the interpreter's bytecode loop (the mapping workers use ~13% less CPU per span).
  Annotations are not turned into C types, so the compiled modules behave as the .py files do.

Both are optional: without a C compiler (or Cython) the install still succeeds and runs the
Python code; tests/test_compiled.py says what is missing or stale. After editing a module in
COMPILED, rebuild it (`make build`, which `make test` runs), or the old compiled module is what
Python imports.
"""
import os

from setuptools import Extension, setup

# What runs for every span. The foreign conventions' modules run only when a span's key shape
# and values are new (conventions/__init__.py remembers their answers), so they stay Python.
COMPILED = [f"src/alephant_otel/{m}.py" for m in (
    "mapping/__init__", "mapping/span", "mapping/context", "mapping/headers", "mapping/kinds",
    "mapping/money", "mapping/usage", "mapping/conventions/__init__", "mapping/conventions/_engine",
    "inherit", "otlp", "pricing", "store/rows")]


def compiled_modules() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    try:
        extensions = cythonize(
            [Extension("*", [path], optional=True) for path in COMPILED],
            compiler_directives={"language_level": 3, "annotation_typing": False, "binding": True},
            build_dir="build/cython", quiet=True, nthreads=2)
    except Exception as exc:  # noqa: BLE001 - a module Cython cannot compile stays Python
        print(f"alephant-otel: the Python modules are not compiled ({exc})")
        return []
    for ext in extensions:
        ext.optional = True
    return extensions


if __name__ == "__main__":
    setup(ext_modules=[Extension("alephant_otel._wirec", ["src/alephant_otel/_wirec.c"], optional=True),
                       *compiled_modules()],
          options={"build_ext": {"parallel": os.cpu_count() or 1}})
