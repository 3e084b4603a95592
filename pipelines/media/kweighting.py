"""K-weighting and channel weights of ITU-R BS.1770-4, for any sample rate and channel layout.

The standard gives the two filters' coefficients at 48 kHz only; these are the analogue designs
they come from (the high shelf that models the head, the high pass that drops rumble), turned
into biquads for the recording's rate the way libebur128 and ffmpeg's ebur128 do.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# The stage 1 shelf (+4 dB above about 1.7 kHz) and the stage 2 high pass (about 38 Hz).
_SHELF_HZ, _SHELF_GAIN_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_SHELF_VB_EXPONENT = 0.4996667741545416
_HIGH_PASS_HZ, _HIGH_PASS_Q = 38.13547087602444, 0.5003270373238773
# A design frequency at or above Nyquist folds over; at rates too low to hold it (a telephone
# rate holds no shelf at all) it is placed just under Nyquist instead.
_HIGHEST_SHARE_OF_NYQUIST = 0.9
# Surround channels count 1.41 times (+1.5 dB); the low-frequency effects channels not at all.
SURROUND_WEIGHT = 1.41
_SURROUNDS = frozenset({"SL", "SR", "BL", "BR"})
_EFFECTS = frozenset({"LFE", "LFE2", "LFE1"})
# A layout PyAV leaves unnamed: channels in the usual order (L, R, C, LFE, Ls, Rs) by count.
_DEFAULT_NAMES = {
    1: ("FC",),
    2: ("FL", "FR"),
    6: ("FL", "FR", "FC", "LFE", "BL", "BR"),
    8: ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"),
}


def k_weighting(sample_rate: int) -> Floats:
    """The two K-weighting stages as second-order sections (scipy.signal's `sos` form)."""
    return np.array([_shelf(sample_rate), _high_pass(sample_rate)], dtype=np.float64)


def _tan(frequency: float, sample_rate: int) -> float:
    highest = _HIGHEST_SHARE_OF_NYQUIST * sample_rate / 2
    return math.tan(math.pi * min(frequency, highest) / sample_rate)


def _shelf(sample_rate: int) -> list[float]:
    k = _tan(_SHELF_HZ, sample_rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    b = [(vh + vb * k / _SHELF_Q + k * k) / a0, 2.0 * (k * k - vh) / a0]
    b.append((vh - vb * k / _SHELF_Q + k * k) / a0)
    return [*b, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _SHELF_Q + k * k) / a0]


def _high_pass(sample_rate: int) -> list[float]:
    k = _tan(_HIGH_PASS_HZ, sample_rate)
    a0 = 1.0 + k / _HIGH_PASS_Q + k * k
    return [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGH_PASS_Q + k * k) / a0]


def channel_weights(names: list[str]) -> Floats:
    """Each channel's weight G by its name in FFmpeg's layout (FL, FR, FC, LFE, BL, SL, ...);
    an unnamed layout is read in the usual order for its channel count."""
    if any(not name or name.startswith("USR") or name == "NONE" for name in names):
        names = list(_DEFAULT_NAMES.get(len(names), names))
    return np.array([_weight(name) for name in names], dtype=np.float64)


def _weight(name: str) -> float:
    if name in _EFFECTS:
        return 0.0
    return SURROUND_WEIGHT if name in _SURROUNDS else 1.0
