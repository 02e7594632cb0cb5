"""Well-formed identifiers: INE (pupil), UAI (school) and UUID (xAPI statement), vectorised.

Pupil INEs are 10 digits and a check letter. The digits are a keyed permutation of the pupil's
index (a 4-round Feistel network on ``10**5 x 10**5``), so INEs are unique by construction,
look random, and need no set of already drawn values, whatever the number of pupils or chunks.
The check letter of INE and UAI is the one of the RNE: the number modulo 23 read in the
alphabet without I, O and Q.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pyarrow as pa

CHECK_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # 23 letters: no I, O, Q
_CHECK_ASCII = np.frombuffer(CHECK_LETTERS.encode("ascii"), dtype=np.uint8)
_HEX_ASCII = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HALF = np.uint64(100_000)
_ROUNDS = 4
INE_SPACE = 10**10
_INE_RE = re.compile(r"[0-9]{10}[A-HJ-NP-Z]")
_UAI_RE = re.compile(r"[0-9]{7}[A-HJ-NP-Z]")


def check_letter(number: int) -> str:
    """The RNE check letter of a number (INE digits or the 7 digits of a UAI)."""
    return CHECK_LETTERS[number % 23]


def ine_is_well_formed(ine: str) -> bool:
    """True if ``ine`` is 10 digits followed by their check letter."""
    return bool(_INE_RE.fullmatch(ine)) and check_letter(int(ine[:10])) == ine[10]


def uai_is_well_formed(uai: str) -> bool:
    """True if ``uai`` is 7 digits followed by their check letter."""
    return bool(_UAI_RE.fullmatch(uai)) and check_letter(int(uai[:7])) == uai[7]


def uai(prefix: str, serial: int) -> str:
    """The UAI of school ``serial`` (0..9999) of the département whose prefix is given."""
    digits = f"{prefix}{serial:04d}"
    return digits + check_letter(int(digits))


def fixed_width_strings(chars: npt.NDArray[np.uint8]) -> pa.Array:
    """An Arrow string array from an ``(n, width)`` array of ASCII codes, without Python loops."""
    chars = np.ascontiguousarray(chars, dtype=np.uint8)
    n, width = chars.shape
    if n * width >= 2**31:
        raise ValueError(f"{n} strings of {width} characters exceed one Arrow string array")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _decimal_ascii(numbers: npt.NDArray[np.uint64], width: int) -> npt.NDArray[np.uint8]:
    out = np.empty((len(numbers), width), dtype=np.uint8)
    x = numbers.astype(np.uint64, copy=True)
    for i in range(width - 1, -1, -1):
        out[:, i] = (x % np.uint64(10)).astype(np.uint8) + ord("0")
        x //= np.uint64(10)
    return out


def _round_function(right: npt.NDArray[np.uint64], key: np.uint64) -> npt.NDArray[np.uint64]:
    # splitmix64-style mixing; uint64 arithmetic wraps around, as intended
    x = (right + key) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    return x % _HALF


class IneCodec:
    """Maps pupil indexes to unique INE numbers with a keyed permutation, and formats them."""

    def __init__(self, rng: np.random.Generator) -> None:
        """Draw the permutation's round keys from ``rng`` (the seed decides every INE)."""
        self._keys = tuple(np.uint64(k) for k in rng.integers(0, 2**63, size=_ROUNDS))

    def numbers(self, index: npt.NDArray[np.integer]) -> npt.NDArray[np.uint64]:
        """The 10-digit INE numbers of pupils ``index`` (distinct indexes give distinct INEs)."""
        x = np.asarray(index).astype(np.uint64)
        left, right = x // _HALF, x % _HALF
        for key in self._keys:
            left, right = right, (left + _round_function(right, key)) % _HALF
        return left * _HALF + right

    @staticmethod
    def strings(numbers: npt.NDArray[np.uint64]) -> pa.Array:
        """INE strings (10 digits and check letter) of INE numbers."""
        chars = np.empty((len(numbers), 11), dtype=np.uint8)
        chars[:, :10] = _decimal_ascii(numbers, 10)
        chars[:, 10] = _CHECK_ASCII[(numbers % np.uint64(23)).astype(np.intp)]
        return fixed_width_strings(chars)


def uuid4_strings(raw: npt.NDArray[np.uint8]) -> pa.Array:
    """Version-4 UUID strings from an ``(n, 16)`` array of random bytes (RFC 9562 layout)."""
    b = np.array(raw, dtype=np.uint8, copy=True)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexa = np.empty((len(b), 32), dtype=np.uint8)
    hexa[:, 0::2] = _HEX_ASCII[b >> 4]
    hexa[:, 1::2] = _HEX_ASCII[b & 0x0F]
    chars = np.full((len(b), 36), ord("-"), dtype=np.uint8)
    chars[:, 0:8] = hexa[:, 0:8]
    chars[:, 9:13] = hexa[:, 8:12]
    chars[:, 14:18] = hexa[:, 12:16]
    chars[:, 19:23] = hexa[:, 16:20]
    chars[:, 24:36] = hexa[:, 20:32]
    return fixed_width_strings(chars)
