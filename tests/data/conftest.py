"""Tiny keyword-spotting corpora written with the stdlib `wave` module.

Every clip is a tone whose frequency encodes its class, so a test can check
that a label travelled with the right audio.
"""

import json
import os
import wave

import numpy as np
import pytest

GSC_KEYWORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
GSC_UNKNOWN_WORDS = ("bed", "cat", "dog")
GSC_SPEAKERS = tuple(f"{i:08x}" for i in range(0x1A2B3C00, 0x1A2B3C06))
MC_KNOWN = ("你好", "打开", "关闭", "播放", "暂停", "上一首", "下一首", "音量加", "音量减", "静音")
MC_UNKNOWN = ("你号", "打卡")
MC_EXCLUDED = ("hello",)
MC_SPEAKERS = tuple(f"G{i:04d}" for i in range(1, 9))


def write_wav(path, samples, sample_rate=16000, channels=1, width=2):
    """Writes float samples in [-1, 1] as PCM (mono 16-bit by default)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    samples = np.asarray(samples, np.float64)
    if width == 2:
        data = np.round(np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2")
    else:
        data = np.round((np.clip(samples, -1, 1) + 1) * 127.5).astype(np.uint8)
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    with wave.open(path, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(sample_rate)
        writer.writeframes(data.tobytes())


def tone(frequency, seconds, sample_rate, amplitude=0.5):
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def gsc_frequency(word):
    words = GSC_KEYWORDS + GSC_UNKNOWN_WORDS
    return 300.0 + 150.0 * words.index(word)


def make_gsc2(root, files_per_speaker=2):
    """6 speakers x 13 words x `files_per_speaker` clips; 1 valid, 1 test speaker."""
    rng = np.random.default_rng(0)
    valid, test = [], []
    for word in GSC_KEYWORDS + GSC_UNKNOWN_WORDS:
        for s, speaker in enumerate(GSC_SPEAKERS):
            for n in range(files_per_speaker):
                name = f"{speaker}_nohash_{n}.wav"
                seconds = 1.0 if n == 0 else 0.75  # some short clips
                write_wav(os.path.join(root, word, name), tone(gsc_frequency(word), seconds, 16000))
                if s == 4:
                    valid.append(f"{word}/{name}")
                elif s == 5:
                    test.append(f"{word}/{name}")
    for name, seconds in (("white.wav", 3.0), ("hum.wav", 2.0)):
        write_wav(
            os.path.join(root, "_background_noise_", name),
            rng.uniform(-0.9, 0.9, int(seconds * 16000)),
        )
    with open(os.path.join(root, "_background_noise_", "README.md"), "w") as f:
        f.write("not audio\n")
    with open(os.path.join(root, "validation_list.txt"), "w") as f:
        f.write("\n".join(valid) + "\n")
    with open(os.path.join(root, "testing_list.txt"), "w") as f:
        f.write("\n".join(test) + "\n")
    return root


def mc_frequency(keyword):
    words = MC_KNOWN + MC_UNKNOWN + MC_EXCLUDED
    return 400.0 + 170.0 * words.index(keyword)


def write_mapping(path, clip_seconds=1.2):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(
            {
                "known": list(MC_KNOWN),
                "unknown": list(MC_UNKNOWN),
                "excluded": list(MC_EXCLUDED),
                "clip_seconds": clip_seconds,
            },
            f,
            ensure_ascii=False,
        )
    return path


def mc_seconds(s, k):
    """Clip lengths 0.6-1.5 s; some exceed the 1.2 s test clip length."""
    return 0.6 + 0.1 * ((s * 3 + k) % 10)


def make_mc_kws_magichub(root, sample_rate=48000):
    lines = ["SPEAKER_ID\tUTTRANS_ID\tPROMPT\tTRANSCRIPTION"]
    words = MC_KNOWN + MC_UNKNOWN + MC_EXCLUDED
    for s, speaker in enumerate(MC_SPEAKERS):
        for k, word in enumerate(words):
            utt = f"{speaker}_{k:04d}.wav"
            write_wav(
                os.path.join(root, "WAV", speaker, utt),
                tone(mc_frequency(word), mc_seconds(s, k), sample_rate),
                sample_rate,
            )
            lines.append(f"{speaker}\t{utt}\t{word}\t{word}")
    with open(os.path.join(root, "UTTRANSINFO.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "SPKINFO.txt"), "w", encoding="utf-8") as f:
        f.write("CHANNEL\tSPEAKER_ID\tGENDER\tAGE\tREGION,CITY\tDEVICE\n")
        for speaker in MC_SPEAKERS:
            f.write(f"C0\t{speaker}\tF\t30\tBeijing\tphone\n")
    return root


def make_mc_kws_plain(root, sample_rate=48000):
    for s, speaker in enumerate(MC_SPEAKERS):
        for k, word in enumerate(MC_KNOWN + MC_UNKNOWN + MC_EXCLUDED):
            write_wav(
                os.path.join(root, word, f"{speaker}_{k}.wav"),
                tone(mc_frequency(word), mc_seconds(s, k), sample_rate),
                sample_rate,
            )
    return root


@pytest.fixture(scope="session")
def gsc2_root(tmp_path_factory):
    return make_gsc2(str(tmp_path_factory.mktemp("gsc2")))


@pytest.fixture(scope="session")
def mc_kws_root(tmp_path_factory):
    return make_mc_kws_magichub(str(tmp_path_factory.mktemp("mc_kws")))


@pytest.fixture(scope="session")
def mc_kws_plain_root(tmp_path_factory):
    return make_mc_kws_plain(str(tmp_path_factory.mktemp("mc_kws_plain")))


@pytest.fixture(scope="session")
def mapping_path(tmp_path_factory):
    return write_mapping(str(tmp_path_factory.mktemp("mapping") / "map.json"))
