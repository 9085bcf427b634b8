"""The validation journal: one JSON line per sample checked, written as each is, so that a
run that stops (a board that died, a cable pulled, Ctrl-C) loses nothing and
``edgert validate ... --resume`` continues after the last sample whose output was received
and checked, counting none twice.

    {"journal": 1, "model_hash": ..., "dataset": <sha256 of the samples>, "samples": N}
    {"index": 0, "sample": "random #0 (seed 0)", "exact": true, ...}
    ...

A line is appended and flushed only after the sample's comparison is complete; a line cut
short by a crash is ignored on resume (that sample is redone). Resuming demands the same
build (model hash) and the same samples (their digest), or it is refused.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from edgert.errors import UserError

VERSION = 1
FILE = "journal.jsonl"


def fingerprint(dataset) -> str:
    """sha256 over every sample's dtypes, shapes and bytes, and the labels."""
    h = hashlib.sha256()
    for inputs in dataset.samples:
        for x in inputs:
            x = np.ascontiguousarray(x)
            h.update(f"{x.dtype.str}{x.shape}".encode())
            h.update(x.tobytes())
    h.update(json.dumps(list(dataset.labels)).encode())
    return h.hexdigest()


class Journal:
    """``rows``: the samples already checked, by index (from the file, when resuming)."""

    def __init__(self, path: Path, model_hash: str, dataset, *, resume: bool):
        self.path = Path(path)
        header = {"journal": VERSION, "model_hash": model_hash, "dataset": fingerprint(dataset),
                  "samples": len(dataset)}
        self.rows: dict[int, dict] = {}
        self._cut_short = False
        if resume:
            self.rows = self._read(header)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume or not self.path.is_file():
            self.path.write_text(json.dumps(header) + "\n")
        elif self._cut_short:
            self._rewrite(header)
        self.resumed = len(self.rows)
        self._file = open(self.path, "a")

    def _read(self, header: dict) -> dict[int, dict]:
        if not self.path.is_file():
            raise UserError(f"--resume: there is no journal at {self.path}",
                            "run without --resume; the journal is written as samples are checked")
        text = self.path.read_text()
        self._cut_short = not text.endswith("\n")
        lines = text.split("\n")
        try:
            found = json.loads(lines[0])
        except ValueError:
            raise UserError(f"--resume: {self.path} is not a validation journal", "run without --resume") from None
        for key, what in (("model_hash", "another build"), ("dataset", "other samples"),
                          ("samples", "another number of samples"), ("journal", "another edgert")):
            if found.get(key) != header[key]:
                raise UserError(f"--resume: the journal {self.path} is of {what} ({key} "
                                f"{str(found.get(key))[:16]}, this run {str(header[key])[:16]})",
                                "resume with the same build, dataset, --random and --seed, or run without --resume")
        rows: dict[int, dict] = {}
        for line in lines[1:]:
            if not line:
                continue
            try:
                row = json.loads(line)
                index = int(row["index"])
            except (ValueError, KeyError, TypeError):
                self._cut_short = True  # the line a crash cut short: its sample is redone
                continue
            if 0 <= index < header["samples"]:
                rows[index] = row
        return rows

    def _rewrite(self, header: dict) -> None:
        """Drop a cut-short line, so that appended lines start on a line of their own."""
        text = json.dumps(header) + "\n" + "".join(json.dumps(r) + "\n" for _, r in sorted(self.rows.items()))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.path)

    def add(self, index: int, row: dict) -> None:
        """Record a checked sample (flushed before this returns)."""
        row = {"index": index, **row}
        self.rows[index] = row
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
