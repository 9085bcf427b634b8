"""Element types of edgert IR tensors: one table, one place for each fact."""
from __future__ import annotations

import enum

import numpy as np


#: numpy / TVM scalar type name -> its C type: the IR's element types, and the wider set the
#: generated kernels use internally
C_TYPES = {
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "float32": "float", "float64": "double",
}


class DType(enum.Enum):
    # name     (bits, numpy dtype)
    I8 = (8, "int8")
    U8 = (8, "uint8")
    I16 = (16, "int16")
    I32 = (32, "int32")
    I64 = (64, "int64")
    F32 = (32, "float32")

    def __init__(self, bits: int, np_name: str):
        self.bits = bits
        self.np_name = np_name
        self.c_type = C_TYPES[np_name]

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
