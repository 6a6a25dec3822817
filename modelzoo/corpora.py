"""Registered corpora: the only data a recipe may name.

Recipes and patches name corpora, never paths, so an idea cannot make a worker read (and copy into its corpus
cache) an arbitrary directory of the host. A corpus is either

* **built in**: text that every Debian machine with Python 3 has without a download (see :data:`BUILTINS`),
  taken in sorted order up to a size cap so it builds in seconds and the same everywhere; or
* **registered** by an operator: a sub-folder of ``FLIGHTDECK_CORPORA_DIR`` (default ``var/corpora`` of the
  checkout, or ``$FLIGHTDECK_VAR_DIR/corpora``) whose folder name is the corpus name. It holds either text
  files, or pre-tokenized shards with a ``manifest.json`` (docs/contracts.md, "Pre-tokenized shards"),
  which are used as they are.

This module is cheap (no numpy, no torch): config validation calls it on every patch submitted.
"""

from __future__ import annotations

import gzip
import os
import re
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPORA_ENV = "FLIGHTDECK_CORPORA_DIR"
VAR_ENV = "FLIGHTDECK_VAR_DIR"
MANIFEST = "manifest.json"
# A name is a plain word: no "/", no ".", so no path (absolute, relative or "..") can ever be a corpus name.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")  # metric names "val_loss/<name>" fit 64 chars
_STDLIB_EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


class UnknownCorpus(ValueError):
    """A recipe names something that is not a registered corpus."""


@dataclass(frozen=True)
class Document:
    """One file (or other unit) of a corpus: its stable name inside the corpus and what identifies its content."""

    name: str
    size: int
    version: int  # mtime in ns for files; 0 for in-memory documents, whose size and Python version identify them


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus's documents come from; ``read`` returns a document's bytes."""

    name: str
    kind: str
    description: str
    origin: str  # "built-in" or "registered"
    list_documents: Callable[[], list[Document]]
    read: Callable[[str], bytes]
    pretokenized_dir: Path | None = None  # set for a registered folder holding a shard manifest


# ---------------------------------------------------------------- built-in sources


def _walk(root: Path, keep_dir: Callable[[str], bool], keep_file: Callable[[str], bool]) -> list[Document]:
    """Regular files under ``root`` as sorted POSIX relative paths (hidden entries skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and keep_dir(d)]
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or not keep_file(name) or not path.is_file():
                continue
            stat = path.stat()
            found.append(Document((rel_dir / name).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda document: document.name)


def _file_source(name: str, kind: str, description: str, origin: str, root: Path,
                 keep_dir: Callable[[str], bool] = lambda _: True, keep_file: Callable[[str], bool] = lambda _: True,
                 decode: Callable[[bytes], bytes] = lambda data: data) -> CorpusSource:
    return CorpusSource(
        name=name, kind=kind, description=description, origin=origin,
        list_documents=lambda: _walk(root, keep_dir, keep_file) if root.is_dir() else [],
        read=lambda rel: decode((root / rel).read_bytes()),
    )


def _python_docs() -> CorpusSource:
    def topics() -> dict[str, str]:
        from pydoc_data.topics import topics as pydoc_topics  # the language reference's text, shipped for help()

        return pydoc_topics

    return CorpusSource(
        name="python-docs", kind="prose (documentation)",
        description="The Python language reference as shipped for help(): one document per topic.",
        origin="built-in",
        list_documents=lambda: [Document(name, len(text.encode()), 0) for name, text in sorted(topics().items())],
        read=lambda name: topics()[name].encode(),
    )


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError):
        return b"\x00"  # not text: the corpus builder skips documents holding a NUL byte


def _builtins() -> dict[str, CorpusSource]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = [
        _file_source("stdlib", "code (Python)", "The Python standard library's own .py sources (tests excluded).",
                     "built-in", stdlib, keep_dir=lambda d: d not in _STDLIB_EXCLUDED_DIRS,
                     keep_file=lambda f: f.endswith(".py")),
        _python_docs(),
        _file_source("debian-copyright", "prose (licences)",
                     "Every installed Debian package's copyright file: licence texts and attributions.",
                     "built-in", Path("/usr/share/doc"), keep_file=lambda f: f == "copyright"),
        _file_source("manpages", "markup (roff manual pages)",
                     "English manual pages of the installed packages, sections 1-8, decompressed roff source.",
                     "built-in", Path("/usr/share/man"), keep_dir=lambda d: bool(re.fullmatch(r"man[1-8]", d)),
                     keep_file=lambda f: f.endswith(".gz"), decode=_gunzip),
    ]
    return {source.name: source for source in sources}


BUILTINS: tuple[str, ...] = tuple(_builtins())


# ---------------------------------------------------------------- registered folders


def corpora_dir() -> Path:
    explicit = os.environ.get(CORPORA_ENV)
    if explicit:
        return Path(explicit)
    var = os.environ.get(VAR_ENV)
    return (Path(var) if var else Path(__file__).resolve().parent.parent / "var") / "corpora"


def _registered_source(folder: Path) -> CorpusSource:
    if (folder / MANIFEST).is_file():
        return CorpusSource(
            name=folder.name, kind="pre-tokenized shards", description="Tokenized elsewhere; used as is.",
            origin="registered", list_documents=lambda: [], read=lambda rel: b"", pretokenized_dir=folder,
        )
    return _file_source(folder.name, "text", "Text files registered by an operator.", "registered", folder)


def registered_corpora() -> dict[str, CorpusSource]:
    """Every corpus a recipe may name, sorted by name; a registered folder may not shadow a built-in."""
    sources = _builtins()
    root = corpora_dir()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if NAME_PATTERN.fullmatch(folder.name) and folder.name not in sources and folder.is_dir():
                sources[folder.name] = _registered_source(folder)
    return dict(sorted(sources.items()))


def corpus_source(name: str) -> CorpusSource:
    """The registered corpus ``name``; any other value (a path in particular) is refused without touching it."""
    sources = registered_corpora()
    if not (isinstance(name, str) and NAME_PATTERN.fullmatch(name) and name in sources):
        raise UnknownCorpus(unknown_corpus_message(name, list(sources)))
    return sources[name]


def unknown_corpus_message(name: object, registered: list[str]) -> str:
    # The same words whatever the value is: a path that exists reads exactly like one that does not.
    return f"{name!r} is not a registered corpus (recipes name corpora, not paths); registered: {', '.join(registered)}"


def corpus_name_errors(key: str, names: list[str]) -> list[str]:
    """One message per name in ``names`` that is not a registered corpus, prefixed with ``key``."""
    unknown = [name for name in names if not (isinstance(name, str) and NAME_PATTERN.fullmatch(name))]
    known = list(registered_corpora())
    unknown += [name for name in names if name not in unknown and name not in known]
    return [f"{key}: {unknown_corpus_message(name, known)}" for name in unknown]
