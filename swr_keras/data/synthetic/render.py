"""From eSpeak NG waveforms to corpus-rate audio: trimming and resampling.

eSpeak NG speaks at its native 22,050 Hz with silence around every
utterance. These helpers trim the silence and resample to the corpus rate
in the frequency domain, where the random spectral tilt that stands in for
microphone colour is one multiplication. (`swr_keras.data.resample` is the
training pipeline's in-graph resampler; this one runs in NumPy while a
corpus is written.)
"""

import numpy as np

from swr_keras.data.synthetic import espeak


def trim(waveform, threshold=0.01):
    """Drops eSpeak's leading and trailing silence."""
    active = np.nonzero(np.abs(waveform) > threshold * max(np.abs(waveform).max(), 1e-9))[0]
    if active.size == 0:
        return waveform
    return waveform[active[0] : active[-1] + 1]


def _smooth_size(minimum):
    """Smallest 2^a * 3^b * 5^c >= minimum: a fast FFT length."""
    best = 1 << max(int(minimum) - 1, 0).bit_length()
    power3 = 1
    while power3 < best:
        power5 = power3
        while power5 < best:
            size = power5
            while size < minimum:
                size *= 2
            best = min(best, size)
            power5 *= 5
        power3 *= 3
    return best


def resample(waveform, source_rate, target_rate, tilt_db_per_octave=0.0):
    """Band-limited resampling in the frequency domain, with a spectral tilt.

    The signal is zero-padded to `down * m` samples (`m` FFT-friendly), so the
    output has exactly `up * m` samples and both transforms are fast; the
    padding also keeps the FFT's circular wrap-around in silence. The tilt,
    in dB per octave around 1 kHz, stands in for microphone colour and costs
    nothing in this domain.
    """
    divisor = np.gcd(int(source_rate), int(target_rate))
    up, down = target_rate // divisor, source_rate // divisor
    pad = source_rate // 50
    blocks = _smooth_size(-(-(len(waveform) + 2 * pad) // down))
    padded = np.zeros(blocks * down)
    padded[pad : pad + len(waveform)] = waveform
    num_out = blocks * up
    spectrum = np.fft.rfft(padded)
    bins = num_out // 2 + 1
    if bins <= len(spectrum):
        spectrum = spectrum[:bins]
    else:
        spectrum = np.pad(spectrum, (0, bins - len(spectrum)))
    if tilt_db_per_octave:
        freqs = np.fft.rfftfreq(num_out, 1.0 / target_rate)
        gain_db = tilt_db_per_octave * np.log2((freqs + 100.0) / 1000.0)
        spectrum = spectrum * 10.0 ** (np.clip(gain_db, -12.0, 12.0) / 20.0)
    resampled = np.fft.irfft(spectrum, num_out) * (up / down)
    start = pad * up // down
    return resampled[start : start + len(waveform) * up // down]


def render(rng, waveform, sample_rate):
    """An eSpeak waveform at `sample_rate`, with a random tilt of +-3 dB/octave."""
    tilt = rng.uniform(-3.0, 3.0)
    return resample(waveform, espeak.sample_rate(), sample_rate, tilt)
