"""Speech synthesis with eSpeak NG through ctypes.

The PyPI package `espeakng-loader` bundles `libespeak-ng` 1.52 together with
its voice data, so no system package is needed. eSpeak NG and its data are
GPL-3.0-or-later.

eSpeak NG keeps synthesis state in C statics that no API call resets (the
phase of its pitch "flutter" table, the gain control), so a call's waveform
depends on everything the process synthesised before it. `synthesize` runs in
this process and is therefore only reproducible within a fixed call sequence.
`synthesize_batch` runs fixed-size chunks of requests, each in a fresh
interpreter, so its output depends on the requests alone: this is what the
synthetic corpus uses to be byte-identical for a given seed.
"""

import concurrent.futures
import ctypes
import ctypes.util
import functools
import io
import json
import os
import subprocess
import sys
import threading

import numpy as np

# Values of the C enums in speak_lib.h (eSpeak NG 1.52).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
_EE_OK = 0

RATE_RANGE = (80, 450)
PITCH_RANGE = (0, 99)
AMPLITUDE_RANGE = (0, 200)

# Requests per fresh worker process: fixed, so that results do not depend on
# how many workers run them.
_CHUNK_SIZE = 512

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def _espeakng_loader():
    # Plain import, not swr_keras.optional: this file also runs as a bare
    # worker script (`_run_chunk`) where the package is not importable.
    try:
        import espeakng_loader
    except ImportError as error:
        raise ImportError(
            "Synthesising speech needs the 'espeakng_loader' package, which is not installed. "
            "Install it with: pip install 'swr_keras[kws]'"
        ) from error
    return espeakng_loader


def _data_path():
    return _espeakng_loader().get_data_path()


class _Engine:
    """The process-wide eSpeak NG instance."""

    def __init__(self):
        self._lib = ctypes.CDLL(_espeakng_loader().get_library_path())
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"))
        self._declare_signatures()
        self.sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, _data_path().encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError(
                "eSpeak NG failed to initialise with data at "
                f"{_data_path()!r}. Reinstall `espeakng-loader`."
            )
        self._chunks = []
        self._voice = None
        # Keep a reference: ctypes frees the trampoline with this object.
        self._callback = _SYNTH_CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _declare_signatures(self):
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int] * 3
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))

    def _collect(self, wav, num_samples, events):
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        return 0

    def set_voice(self, voice):
        # Loading a voice re-reads its dictionary (about 1 ms for Mandarin),
        # so a repeated voice is not loaded again.
        if voice == self._voice:
            return True
        self._voice = None
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            return False
        self._voice = voice
        return True

    def set_parameter(self, parameter, value):
        self._lib.espeak_SetParameter(parameter, int(value), 0)

    def synth(self, text, seed):
        # Breath and aspiration noise come from eSpeak's own generator and
        # from libc's rand(); seed both so only the flutter phase carries over.
        self._lib.espeak_ng_SetRandSeed(seed)
        self._libc.srand(ctypes.c_uint(seed))
        data = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(data, len(data))
        self._chunks = []
        status = self._lib.espeak_Synth(
            buffer, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status}.")
        chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros((0,), np.int16)
        return np.concatenate(chunks)

    def list_voices(self):
        voices = self._lib.espeak_ListVoices(None)
        identifiers = []
        index = 0
        while voices[index]:
            identifiers.append(voices[index].contents.identifier.decode())
            index += 1
        return identifiers


@functools.lru_cache(maxsize=1)
def _engine():
    return _Engine()


def sample_rate():
    """Returns the native output rate of eSpeak NG in Hz (22,050)."""
    return _engine().sample_rate


@functools.lru_cache(maxsize=1)
def available_languages():
    """Returns the eSpeak NG language voices, e.g. `"en"`, `"cmn"`, `"de"`."""
    engine = _engine()
    with engine.lock:
        identifiers = engine.list_voices()
    return tuple(sorted({identifier.split("/")[-1] for identifier in identifiers}))


@functools.lru_cache(maxsize=1)
def available_variants():
    """Returns the voice variants, e.g. `"m1"`, `"f3"`, `"Andy"`."""
    return tuple(sorted(os.listdir(os.path.join(_data_path(), "voices", "!v"))))


@functools.cache
def variant_gender(variant):
    """Returns `"M"`, `"F"` or `""` as declared in a variant's voice file."""
    path = os.path.join(_data_path(), "voices", "!v", variant)
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            fields = line.split()
            if len(fields) >= 2 and fields[0].lower() == "gender":
                return {"male": "M", "female": "F"}.get(fields[1].lower(), "")
    return ""


def check_voice(voice, name="voice"):
    """Raises `ValueError` unless `voice` is `"<language>[+<variant>]"`.

    Args:
        voice: e.g. `"en"`, `"cmn+f2"`.
        name: the argument name used in the error message.
    """
    if not isinstance(voice, str) or not voice:
        raise ValueError(f"`{name}` must be a non-empty string. Received: {name}={voice!r}")
    language, _, variant = voice.partition("+")
    if language not in available_languages():
        examples = ", ".join(repr(name) for name in ("en", "en-US", "cmn", "de", "fr", "ja"))
        raise ValueError(
            f"eSpeak NG has no language {language!r}. Use one of "
            "`swr_keras.data.synthetic.espeak.available_languages()`, e.g. "
            f"{examples}. Received: {name}={voice!r}"
        )
    if variant and variant not in available_variants():
        raise ValueError(
            f"eSpeak NG has no voice variant {variant!r}. Use one of "
            "`swr_keras.data.synthetic.espeak.available_variants()`, e.g. 'm3' or 'f2'. "
            f"Received: {name}={voice!r}"
        )


def _check_range(name, value, bounds):
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"`{name}` must be in [{low}, {high}]. Received: {name}={value}")


def _check_request(text, voice, rate, pitch, amplitude, pitch_range, word_gap):
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"`text` must be a non-empty string. Received: text={text!r}")
    check_voice(voice)
    _check_range("rate", rate, RATE_RANGE)
    _check_range("pitch", pitch, PITCH_RANGE)
    _check_range("amplitude", amplitude, AMPLITUDE_RANGE)
    _check_range("pitch_range", pitch_range, PITCH_RANGE)
    _check_range("word_gap", word_gap, (0, 1000))


def _speak(
    engine, text, voice="en", rate=175, pitch=50, amplitude=100, pitch_range=50, word_gap=0, seed=0
):
    with engine.lock:
        if not engine.set_voice(voice):
            raise ValueError(f"eSpeak NG could not load voice {voice!r}.")
        engine.set_parameter(_PARAM_RATE, rate)
        engine.set_parameter(_PARAM_PITCH, pitch)
        engine.set_parameter(_PARAM_VOLUME, amplitude)
        engine.set_parameter(_PARAM_RANGE, pitch_range)
        engine.set_parameter(_PARAM_WORDGAP, word_gap)
        return engine.synth(text, int(seed))


def synthesize(
    text, voice="en", rate=175, pitch=50, amplitude=100, pitch_range=50, word_gap=0, seed=0
):
    """Speaks `text` with eSpeak NG in this process.

    The waveform depends slightly on what this process synthesised before
    (see the module docstring); use `synthesize_batch` for reproducible output.

    Args:
        text: text to speak, in the script of the voice's language
            (Chinese characters for `"cmn"`).
        voice: `"<language>"` or `"<language>+<variant>"`, e.g. `"en"`,
            `"cmn+f2"`; see `available_languages()`, `available_variants()`.
        rate: speaking rate in words per minute, in [80, 450].
        pitch: base pitch, in [0, 99].
        amplitude: volume, in [0, 200]; 100 is eSpeak's default.
        pitch_range: intonation range, in [0, 99]; 0 is monotone.
        word_gap: extra pause between words, in units of 10 ms.
        seed: seed of eSpeak NG's breath-noise generators.

    Returns:
        A float32 array of shape `(num_samples,)` in [-1, 1] at
        `sample_rate()` Hz.

    Raises:
        ValueError: if `text` is empty, `voice` is unknown or a parameter is
            out of range.
    """
    _check_request(text, voice, rate, pitch, amplitude, pitch_range, word_gap)
    samples = _speak(_engine(), text, voice, rate, pitch, amplitude, pitch_range, word_gap, seed)
    return samples.astype(np.float32) / 32768.0


def _run_chunk(requests):
    # -P keeps this file's folder off sys.path, so sibling modules cannot
    # shadow the standard library in the worker.
    flags = ["-P"] if sys.version_info >= (3, 11) else []
    result = subprocess.run(
        [sys.executable, *flags, os.path.abspath(__file__)],
        input=json.dumps(requests).encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError("eSpeak NG worker failed:\n" + result.stderr.decode(errors="replace"))
    stream = io.BytesIO(result.stdout)
    lengths = np.load(stream)
    samples = np.load(stream)
    return np.split(samples, np.cumsum(lengths)[:-1])


def synthesize_batch(requests, num_workers=2):
    """Speaks many texts reproducibly, in parallel worker processes.

    Args:
        requests: list of dicts with the keyword arguments of `synthesize`
            (`text` required).
        num_workers: number of worker processes run at the same time; the
            output does not depend on it.

    Returns:
        A list of float32 arrays in [-1, 1] at `sample_rate()` Hz, one per
        request. The same list of requests gives identical arrays in any
        process (a waveform may depend slightly on the requests before it).

    Raises:
        ValueError: if a request is invalid or `num_workers` < 1.
    """
    if int(num_workers) < 1:
        raise ValueError(f"`num_workers` must be at least 1. Received: num_workers={num_workers}")
    defaults = dict(
        text=None, voice="en", rate=175, pitch=50, amplitude=100, pitch_range=50, word_gap=0, seed=0
    )
    for request in requests:
        unknown = set(request) - set(defaults)
        if unknown:
            raise ValueError(
                f"Unknown request keys {sorted(unknown)}; use the arguments of "
                f"`synthesize`: {sorted(defaults)}. Received: {request!r}"
            )
    numeric = ("rate", "pitch", "amplitude", "pitch_range", "word_gap", "seed")
    requests = [{**defaults, **request} for request in requests]
    requests = [{**request, **{key: int(request[key]) for key in numeric}} for request in requests]
    for request in requests:
        _check_request(
            *(
                request[key]
                for key in (
                    "text",
                    "voice",
                    "rate",
                    "pitch",
                    "amplitude",
                    "pitch_range",
                    "word_gap",
                )
            )
        )
    # Grouping by voice makes voice switches (and dictionary loads) rare.
    order = sorted(range(len(requests)), key=lambda index: requests[index]["voice"])
    ordered = [requests[index] for index in order]
    chunks = [ordered[start : start + _CHUNK_SIZE] for start in range(0, len(ordered), _CHUNK_SIZE)]
    with concurrent.futures.ThreadPoolExecutor(int(num_workers)) as pool:
        results = list(pool.map(_run_chunk, chunks))
    waveforms = [None] * len(requests)
    for index, waveform in zip(order, (w for chunk in results for w in chunk)):
        waveforms[index] = waveform.astype(np.float32) / 32768.0
    return waveforms


def _serve():
    requests = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    engine = _Engine()
    waveforms = [_speak(engine, **request) for request in requests]
    lengths = np.array([len(waveform) for waveform in waveforms], np.int64)
    samples = np.concatenate(waveforms) if waveforms else np.zeros((0,), np.int16)
    np.save(sys.stdout.buffer, lengths)
    np.save(sys.stdout.buffer, samples.astype(np.int16))


if __name__ == "__main__":
    _serve()
