"""Atomic writes: `.npz` task files, and the text of results (JSON, Markdown, CSV);
and `file_sha256`, the checksum that tells a written file from a damaged one.

A killed process must never leave a half-written file where a complete one is
expected: arrays go to a temporary file in the target's folder, which is then
renamed over the target (atomic on one file system).
"""

import hashlib
import os
import tempfile

import numpy as np


def file_sha256(path):
    """The SHA-256 of a file's bytes, hex; read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_npz_atomically(path, arrays):
    """Writes `arrays` (name -> array) to `path` as `.npz` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".npz", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_text_atomically(path, text):
    """Writes `text` (UTF-8) to `path` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def json_default(value):
    """`json.dump`'s `default` for NumPy scalars and arrays (results, bank records)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot write {type(value).__name__} to JSON")
