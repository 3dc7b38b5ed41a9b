"""The `archspec` command: a thin layer over the library; ArchspecError becomes exit code 2."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from archspec import __version__
from archspec.cli.parser import build_parser, parse
from archspec.cli.terminal import print_diagnostics
from archspec.errors import ArchspecError, shown

__all__ = ["EXIT_BUG", "EXIT_INVALID", "EXIT_OK", "main"]

EXIT_OK = 0
#: archspec itself failed: a bug, reported with a request to tell us.
EXIT_BUG = 1
#: The input was wrong (spec, arguments, weights) or would not fit; nothing was written.
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class _Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that temporary files are removed on the way out."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 2 bad input (one line per problem, nothing
    written), 1 a bug in archspec, 130 interrupted, 143 terminated."""
    # pydantic looks for plugins among every installed package's entry points when it first
    # builds a model: a tenth of a short command's run, for observers of archspec's own models
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:
        # the shell asks for completions: argcomplete answers and exits; imported only then
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parse(parser, argv)
    with _terminate_like_interrupt():
        try:
            code: int = args.run(args)
        except ArchspecError as error:
            print_diagnostics(error.diagnostics)
            return EXIT_INVALID
        except KeyboardInterrupt:
            print("archspec: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except _Terminated:
            print("archspec: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        except BrokenPipeError:
            # the reader of our output left (`archspec analyze ... | head`): nothing to report
            _silence_stdout()
            return EXIT_OK
        except MemoryError:
            return _out_of_memory()
        except Exception as error:
            # torch's CPU allocator fails with a RuntimeError, not a MemoryError
            if isinstance(error, RuntimeError) and "can't allocate memory" in str(error):
                return _out_of_memory()
            return _report_bug(error)  # a bug: say so instead of showing a traceback
    return code


def _out_of_memory() -> int:
    print(
        "archspec: error: ran out of memory; the process may not use more than it has "
        "(see `ulimit -v` and the README's budgets)",
        file=sys.stderr,
    )
    return EXIT_INVALID


def _report_bug(error: Exception) -> int:
    if os.environ.get("ARCHSPEC_DEBUG") == "1":
        import traceback  # only for a bug: every run would pay for the import

        traceback.print_exception(error, file=sys.stderr)
    print(
        f"archspec: internal error: {type(error).__name__}: {shown(str(error))}\n"
        f"archspec: this is a bug in archspec {__version__}, not in your spec; please report it "
        "with the command and the spec (ARCHSPEC_DEBUG=1 prints the traceback)",
        file=sys.stderr,
    )
    return EXIT_BUG


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so no temporary file outlives a killed command."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would fail again on the closed pipe
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
