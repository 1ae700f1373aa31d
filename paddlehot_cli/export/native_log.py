"""Paddle's native output while a variant is derived, kept out of the user's terminal.

Paddle's oneDNN int8 passes print a summary (~32 lines, "---    quantized 3 fused_conv2d ops")
from C++ straight to file descriptor 2 whenever an int8 predictor is created, whatever
`disable_glog_info()` says; the quantisation child prints more. Both go to one log file instead:
removed when the variant is published, named in the error when something fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from paddlehot_cli.errors import UserError


class NativeLog:
    def __init__(self, what: str):
        fd, name = tempfile.mkstemp(prefix=f"paddlehot-{what}-", suffix=".log")
        os.close(fd)
        self.path = Path(name)

    def append(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(text)

    @contextlib.contextmanager
    def capture_fd2(self) -> Iterator[None]:
        """Everything written to fd 2 inside the block (C++ std::cerr included) goes to the log;
        the caller's stderr is back afterwards, also on an exception."""
        sys.stderr.flush()
        saved = os.dup(2)
        log = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.dup2(log, 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(log)

    @contextlib.contextmanager
    def kept_on_failure(self) -> Iterator[None]:
        """Remove the log when the block succeeds; when it fails with a UserError that Paddle
        may explain, keep it and name it in the error's hint."""
        try:
            yield
        except UserError as exc:
            if self.path.stat().st_size and getattr(exc, "paddle_output_relevant", True):
                exc.hint = (f"{exc.hint}; " if exc.hint else "") + f"Paddle's output: {self.path}"
                raise
            self.discard()
            raise
        except BaseException:
            self.discard()
            raise
        self.discard()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
