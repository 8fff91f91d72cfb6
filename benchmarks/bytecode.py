"""Byte-compile trackly_migrate before it is timed, as installing a wheel does.

`pip install` compiles a wheel's modules; an editable install (``make install``) leaves that
to the first import, and where ``PYTHONDONTWRITEBYTECODE`` is set (as on the reference
machine) every process compiles every module again: 0.2-0.7 s more before a run's first
request, which no installed copy pays. The benchmarks measure the installed case.
"""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "trackly_migrate"


def compile_package() -> None:
    compileall.compile_dir(str(PACKAGE), quiet=1)
