"""What every ``mtlasr.bin`` program shares: how it parses, logs, fails and
writes its ark output.

A program is a module docstring (``Usage:``, ``e.g.:``), ``get_parser()``
(built on :func:`make_parser`) and a ``run(args)`` that returns the exit status; its ``main`` is
``program(get_parser(), run, argv, logger)``. Bad input raises one of
:data:`JOB_ERRORS` with a message naming the file, line or utterance; it is
logged as one ``ERROR`` line (which steps' ``die_log`` shows on the
terminal) and the program exits with status 1, never with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from .datadir import PathLike

JOB_ERRORS = (ValueError, KeyError, OSError)
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def make_parser(doc: Optional[str], *positionals: str) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` prints the module docstring as
    written, with the plain positional arguments ``positionals`` (in order;
    their meaning is in the docstring's ``Usage:`` line)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in positionals:
        p.add_argument(name)
    return p


def error_text(e: BaseException) -> str:
    """The message of an exception (a KeyError's without the quotes repr adds)."""
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    return str(e)


def program(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
            argv: Optional[Sequence[str]], logger: logging.Logger, level: int = logging.INFO) -> int:
    """Run ``run(args)`` on ``argv`` parsed by ``parser``, with log lines
    ``<time> <program> <level> <message>`` on stderr.

    Returns:
      ``run``'s exit status; 1 after logging the message of one of
      :data:`JOB_ERRORS` as an error line.
    """
    logging.basicConfig(level=level, format=LOG_FORMAT)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except JOB_ERRORS as e:
        logger.error("%s", error_text(e))
        return 1


@contextlib.contextmanager
def ark_writer(ark: PathLike, scp: Optional[PathLike] = None) -> Iterator[Callable]:
    """Write a Kaldi binary ark (and its scp) that appear only when complete.

    Yields ``write(key, array)`` (``kaldiio.WriteHelper``). Both files are
    written under ``<name>.tmp``; on success the scp's offsets are made to
    point at the final ark name, the ark is moved into place, then the scp.
    On an exception both temporaries are removed and an existing ark / scp
    of the same name is left as it was.

    Args:
      ark: the ark file; scp: its scp (None: no scp).
    """
    import kaldiio

    ark, tmp_ark = str(ark), str(ark) + ".tmp"
    tmp_scp = str(scp) + ".tmp" if scp is not None else None
    spec = f"ark,scp:{tmp_ark},{tmp_scp}" if scp is not None else f"ark:{tmp_ark}"
    try:
        with kaldiio.WriteHelper(spec) as writer:
            yield writer
        if scp is not None:
            lines = Path(tmp_scp).read_text().splitlines()
            prefix = f" {tmp_ark}:"
            with open(tmp_scp, "w", encoding="utf-8") as f:
                for line in lines:
                    if prefix not in line:
                        raise ValueError(f"{tmp_scp}: line {line!r} does not point into {tmp_ark}")
                    f.write(line.replace(prefix, f" {ark}:", 1) + "\n")
        os.replace(tmp_ark, ark)
        if scp is not None:
            os.replace(tmp_scp, scp)
    except BaseException:
        for f in (tmp_ark, tmp_scp):
            if f is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f)
        raise
