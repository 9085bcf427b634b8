"""Element types of edgert IR tensors: one table, one place for each fact."""
from __future__ import annotations

import enum

import numpy as np


class DType(enum.Enum):
    # name     (bits, numpy dtype, C type)
    I8 = (8, "int8", "int8_t")
    U8 = (8, "uint8", "uint8_t")
    I16 = (16, "int16", "int16_t")
    I32 = (32, "int32", "int32_t")
    I64 = (64, "int64", "int64_t")
    F32 = (32, "float32", "float")

    def __init__(self, bits: int, np_name: str, c_type: str):
        self.bits = bits
        self.np_name = np_name
        self.c_type = c_type

    @property
    def np(self) -> np.dtype:
        return np.dtype(self.np_name)

    @property
    def itemsize(self) -> int:
        return self.bits // 8

    @property
    def is_float(self) -> bool:
        return self is DType.F32

    @property
    def short(self) -> str:
        return self.name.lower()

    @classmethod
    def from_numpy(cls, dtype) -> "DType":
        name = np.dtype(dtype).name
        for d in cls:
            if d.np_name == name:
                return d
        raise ValueError(f"no edgert dtype for numpy {name}")
