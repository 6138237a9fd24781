"""What a step's output was made from: the record that decides whether a
rerun may skip it.

A step writes ``<out-dir>/.<name>.record`` last, once its outputs are in
place; a rerun skips the step only when the record it would write now is
the same (utils/lib.sh: ``step_record``, ``step_fresh``, ``step_done``).
The record holds, one line each:

* ``code <sha1>``: the step's shell script, the shell libraries it sources
  and every Python module of this package that the ``mtlasr.bin`` programs
  it runs import, directly or not (found by reading their ``import``
  statements), so a change of the code that made an output redoes it and a
  change elsewhere does not;
* ``options <text>``: the options that change the output;
* ``input <path> <bytes> <sha1>``: each input file's size and checksum (a
  directory: of every file in it, recursively, logs and records left out);
* ``audio <wav.scp> <n> <sha1>``: for a wav.scp, the size and modification
  time of every audio file it lists (checksumming a corpus's audio on
  every rerun would cost minutes), and the text of every command entry;
* ``tree <dir> <n> <sha1>``: the relative path, size and modification time
  of every file under a directory (a corpus given to data prep).

Paths are written as given, so a record made from ``data/train`` matches
only when the step is called with the same paths.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set

from .datadir import PathLike

PACKAGE = "mtlasr"
_SKIP = (".log", ".record", ".tmp")


def sha1_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """sha1 hex digest of a file's bytes."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def input_line(path: PathLike) -> str:
    """``input <path> <bytes> <sha1>`` of a file, or of a directory (all its
    files, recursively, in sorted order, except logs, records and temporary
    files, each as ``<relative path> <sha1>``).

    Raises:
      FileNotFoundError: no such file or directory.
    """
    p = Path(path)
    if p.is_dir():
        h, size = hashlib.sha1(), 0
        for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.endswith(_SKIP)
                        and "log" not in x.relative_to(p).parts[:-1]):
            size += f.stat().st_size
            h.update(f"{f.relative_to(p)} {sha1_file(f)}\n".encode())
        return f"input {path} {size} {h.hexdigest()}"
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such file or directory (an input of the step)")
    return f"input {path} {p.stat().st_size} {sha1_file(p)}"


def audio_line(wav_scp: PathLike) -> str:
    """``audio <wav.scp> <entries> <sha1>`` over every entry's file size and
    modification time (a command entry: its text).

    Raises:
      FileNotFoundError: the wav.scp, or an audio file it lists, is missing
        (naming the utterance).
    """
    from .datadir import read_table

    h = hashlib.sha1()
    table = read_table(wav_scp)
    for utt, spec in table.items():
        spec = spec.strip()
        if spec.endswith("|"):
            h.update(f"{utt} {spec}\n".encode())
            continue
        try:
            st = os.stat(spec)
        except FileNotFoundError:
            raise FileNotFoundError(f"{wav_scp}: utterance {utt}: audio file {spec} does not exist") from None
        h.update(f"{utt} {spec} {st.st_size} {st.st_mtime_ns}\n".encode())
    return f"audio {wav_scp} {len(table)} {h.hexdigest()}"


def tree_line(root: PathLike) -> str:
    """``tree <dir> <files> <sha1>`` over every file's relative path, size
    and modification time under ``root`` (links followed).

    Raises:
      FileNotFoundError: no such directory.
    """
    r = Path(root)
    if not r.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (an input of the step)")
    h, n = hashlib.sha1(), 0
    for dirpath, dirnames, filenames in os.walk(r, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), r)
            h.update(f"{rel} {st.st_size} {st.st_mtime_ns}\n".encode())
            n += 1
    return f"tree {root} {n} {h.hexdigest()}"


def _module_file(libs: Path, module: str) -> Optional[Path]:
    base = libs.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path, module: str) -> Set[str]:
    """Modules of this package that ``module`` (file ``path``) imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # "from pkg import module"
    return out


def python_closure(libs: PathLike, modules: Iterable[str]) -> Dict[str, Path]:
    """Every module of the package reachable by imports from ``modules``
    (dotted names), with its file; the packages' ``__init__`` files too."""
    libs = Path(libs)
    todo: List[str] = list(modules)
    seen: Dict[str, Path] = {}
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        f = _module_file(libs, mod)
        if f is None:
            continue  # a name imported from a module, not a module
        seen[mod] = f
        parts = mod.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imports(f, mod))
    return seen


def code_line(step: PathLike, root: PathLike) -> str:
    """``code <sha1>`` of a step script, the shell files it sources under
    ``root`` (``. utils/lib.sh``, ``. steps/ivector/em_lib.sh``), the
    recipe scripts it runs (``local/...``, from the current directory), and
    the Python modules of this package that its ``mtlasr.bin`` programs and
    Python scripts reach."""
    root, step = Path(root).resolve(), Path(step).resolve()  # a recipe's steps/ is a link
    shell: List[Path] = []
    todo = [step]
    while todo:
        f = todo.pop()
        if f in shell or not f.is_file():
            continue
        shell.append(f)
        if f.suffix != ".sh":
            continue
        text = f.read_text()
        for m in re.finditer(r"^\s*(?:\.|source)\s+\"?(?:\$MTL_ROOT/)?((?:utils|steps)/[\w/.-]+\.sh)", text, re.M):
            todo.append((root / m.group(1)).resolve())
        # a recipe's own scripts it runs (local/x.py, local/y.sh), from the recipe dir
        for m in re.finditer(r"(?<![\w/$])(local/[\w/.-]+\.(?:py|sh))\b", text):
            todo.append((Path.cwd() / m.group(1)).resolve())
    programs: Set[str] = set()
    for f in shell:
        if f.suffix == ".py":  # a Python step (e.g. a recipe's data prep): its own imports
            programs.update(_imports(f, "__main__"))
        else:
            programs.update(re.findall(r"\bmtlasr\.bin\.\w+", f.read_text()))
    py = python_closure(root / "steps" / "libs", sorted(programs))
    h = hashlib.sha1()
    for f in [*sorted(shell), *(py[m] for m in sorted(py))]:
        name = f.relative_to(root) if f.is_relative_to(root) else f.name
        h.update(f"{name} {sha1_file(f)}\n".encode())
    return f"code {h.hexdigest()}"


def make_record(step: PathLike, root: PathLike, options: str, inputs: Sequence[PathLike] = (),
                audio: Sequence[PathLike] = (), trees: Sequence[PathLike] = ()) -> str:
    """The record of a step (see the module docstring), one line per item,
    ending in a newline.

    Raises:
      FileNotFoundError: an input, a wav.scp, an audio file or a tree is missing.
    """
    lines = [code_line(step, root), f"options {' '.join(options.split())}"]
    lines += [input_line(p) for p in inputs]
    lines += [audio_line(w) for w in audio]
    lines += [tree_line(t) for t in trees]
    return "\n".join(lines) + "\n"
