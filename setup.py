"""Build of the optional native engine of ``rbsf.deploy`` (a plain C library loaded with ctypes).

All package metadata lives in ``pyproject.toml``. The extension is optional: when no C compiler
is available the install still succeeds and the engine falls back to PyTorch.
"""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension(
        "rbsf.deploy._bitconv",
        sources=["rbsf/deploy/bitconv.c"],
        extra_compile_args=["-O3", "-pthread", "-std=c11", "-ffp-contract=off"],
        extra_link_args=["-pthread"],
        optional=True,
    ),
])
