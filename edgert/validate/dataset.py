"""Validation samples: from a .npz/.npy file, a folder of .npy files, or seeded random
inputs. Every sample is checked against the model's input spec before anything runs.

Accepted layouts (a model with one input; multi-input models take .npz files with one
batch array per input, named as the inputs or in input order):
  x.npy            one sample (the input's shape), or a batch (N, *shape) / (N, *shape[1:])
  data.npz         key 'x' (or the only array) as above; labels from key 'y' or 'labels'
  folder/          every *.npy in name order, one sample each
Float samples for an int8 input are quantized with the input's scale and zero point, as the
model's own QUANTIZE would (round half away from zero, then clamp).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgert.errors import UserError


@dataclass
class Dataset:
    samples: list[list[np.ndarray]]          # samples[i][k]: input k of sample i
    labels: list[int | None] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # where each sample came from, for reports

    def __len__(self) -> int:
        return len(self.samples)


def random_inputs(specs: list[dict], rng: np.random.Generator) -> list[np.ndarray]:
    """One random sample: integers over the dtype's whole range, floats ~ N(0, 1)."""
    out = []
    for s in specs:
        dt = np.dtype(s["dtype"])
        if dt.kind == "f":
            out.append(rng.standard_normal(s["shape"]).astype(dt))
        else:
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, info.max + 1, s["shape"], dtype=dt))
    return out


def random(specs: list[dict], count: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset([random_inputs(specs, rng) for _ in range(count)], [None] * count,
                   [f"random #{i} (seed {seed})" for i in range(count)])


def _fit(spec: dict, x: np.ndarray, where: str) -> np.ndarray:
    dt, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
    if x.dtype != dt:
        if x.dtype.kind == "f" and dt.kind in "iu" and spec.get("quant"):
            q, info = spec["quant"], np.iinfo(dt)
            scaled = x.astype(np.float64) / q["scale"]
            x = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + q["zero_point"]
            x = np.clip(x, info.min, info.max).astype(dt)
        elif x.dtype.kind in "iu" and dt.kind in "iu" and (
                x.size == 0 or np.iinfo(dt).min <= x.min() and x.max() <= np.iinfo(dt).max):
            x = x.astype(dt)  # integers that fit: lossless
        elif x.dtype.kind == "f" and dt.kind == "f":
            x = x.astype(dt)
        else:
            raise UserError(f"{where}: input {spec['name']} is {dt.name}, the sample is {x.dtype.name}",
                            f"save the samples as {dt.name}")
    if x.size != int(np.prod(shape, dtype=np.int64)):
        raise UserError(f"{where}: input {spec['name']} has shape {list(shape)} ({int(np.prod(shape))} values), "
                        f"the sample has {list(x.shape)}", "reshape the samples to the model's input shape")
    return np.ascontiguousarray(x.reshape(shape))


def _split_batch(spec: dict, arr: np.ndarray, where: str) -> list[np.ndarray]:
    """One array -> a list of samples: the input's shape is one sample, a leading axis a batch."""
    shape = tuple(spec["shape"])
    per = int(np.prod(shape, dtype=np.int64))
    if arr.size == per:
        return [_fit(spec, arr, where)]
    if arr.ndim >= 1 and arr.size % per == 0 and arr[0].size == per:
        return [_fit(spec, a, f"{where}[{i}]") for i, a in enumerate(arr)]
    raise UserError(f"{where}: cannot read samples of shape {list(shape)} from an array of shape {list(arr.shape)}",
                    f"give one sample of shape {list(shape)} or a batch (N, {', '.join(map(str, shape[1:] if shape[0] == 1 else shape))})")


def _load_array(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError/zipfile errors for bad files
        raise UserError(f"{path}: not a readable .npy/.npz file ({type(e).__name__}: {e})",
                        "save samples with numpy.save or numpy.savez") from None


def load(path: str | Path, specs: list[dict]) -> Dataset:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise UserError(f"{p}: no .npy files in this folder", "put one sample per .npy file in it")
        if len(specs) != 1:
            raise UserError(f"{p}: a folder of samples works for one-input models; this one takes {len(specs)}",
                            "use a .npz with one batch array per input")
        samples = []
        for f in files:
            samples += [[s] for s in _split_batch(specs[0], _load_array(f), str(f))]
        return Dataset(samples, [None] * len(samples), [f.name for f in files])
    if not p.is_file():
        raise UserError(f"{p}: no such dataset", "pass a .npz, a .npy or a folder of .npy files")
    data = _load_array(p)
    labels = None
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.files)
        label_key = next((k for k in ("y", "labels") if k in keys), None)
        if label_key:
            labels = data[label_key].reshape(-1)
            keys.remove(label_key)
        by_name = [s["name"] for s in specs if s["name"] in keys]
        if len(specs) == 1:
            key = "x" if "x" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise UserError(f"{p}: holds {keys}; expected one array 'x' (and optionally 'y')",
                                "name the sample array x and the labels y")
            columns = [_split_batch(specs[0], data[key], f"{p}:{key}")]
        else:
            names = by_name if len(by_name) == len(specs) else keys
            if len(names) != len(specs):
                raise UserError(f"{p}: holds {len(keys)} arrays, the model takes {len(specs)} inputs",
                                "store one batch array per input, named as the inputs")
            columns = [_split_batch(s, data[k], f"{p}:{k}") for s, k in zip(specs, names)]
            if len({len(c) for c in columns}) != 1:
                raise UserError(f"{p}: the input arrays hold different numbers of samples", "give each input N samples")
        samples = [list(row) for row in zip(*columns)]
    else:
        if len(specs) != 1:
            raise UserError(f"{p}: a .npy holds one input; this model takes {len(specs)}",
                            "use a .npz with one batch array per input")
        samples = [[s] for s in _split_batch(specs[0], data, str(p))]
    n = len(samples)
    lab: list[int | None] = [None] * n
    if labels is not None:
        lab = _check_labels(labels, n, str(p))
    return Dataset(samples, lab, [f"{p.name}[{i}]" for i in range(n)])


def _check_labels(labels, n: int, where: str) -> list[int | None]:
    labels = np.asarray(labels).reshape(-1)
    if labels.size != n:
        raise UserError(f"{where}: {labels.size} labels for {n} samples", "give one label (a class index) per sample")
    if labels.dtype.kind not in "iu":
        raise UserError(f"{where}: labels must be class indices (integers), got {labels.dtype.name}",
                        "store labels as integers")
    return [int(v) for v in labels]


def parse_labels(text: str, n: int) -> list[int | None]:
    """--labels: a .npy file of class indices, or a comma-separated list ('5' or '5,3,1')."""
    p = Path(text)
    if p.suffix == ".npy":
        if not p.is_file():
            raise UserError(f"{p}: no such labels file", "pass a .npy of class indices or a list like 5,3,1")
        return _check_labels(_load_array(p), n, str(p))
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--labels {text!r}: expected class indices like 5 or 5,3,1, or a .npy file",
                        "pass integers separated by commas") from None
    return _check_labels(np.array(values), n, "--labels")
