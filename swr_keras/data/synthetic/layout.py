"""Files of the synthetic corpora: WAVs, GSC2 lists and noise, MC-KWS metadata.

The trees these functions write are described in `swr_keras.data.synthetic`.
"""

import os
import wave

import numpy as np


def prepare_output_dir(output_dir):
    """Creates `output_dir`, which must be absent or empty, and returns it."""
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and os.listdir(output_dir):
        raise ValueError(
            "`output_dir` must be empty or absent, so that no stale files mix "
            f"into the corpus. Received: output_dir={output_dir!r}. Delete it "
            "or choose another directory."
        )
    os.makedirs(output_dir, exist_ok=True)
    return output_dir


def write_wav(path, waveform, sample_rate):
    """Writes `waveform` (floats in [-1, 1]) as a 16-bit mono WAV."""
    samples = np.clip(np.round(waveform * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(samples.tobytes())


def write_gsc_split_lists(output_dir, lists):
    """Writes `validation_list.txt` and `testing_list.txt`, sorted."""
    for split in ("validation", "testing"):
        with open(os.path.join(output_dir, f"{split}_list.txt"), "w", encoding="utf-8") as file:
            file.writelines(f"{path}\n" for path in sorted(lists[split]))


def write_gsc_background_noise(output_dir, tracks, sample_rate, seconds):
    """Writes the first `seconds` of every noise track to `_background_noise_`."""
    folder = os.path.join(output_dir, "_background_noise_")
    os.makedirs(folder)
    num_samples = int(seconds * sample_rate)
    for noise_type, track in tracks.items():
        name = "babble.wav" if noise_type == "babble" else f"{noise_type}_noise.wav"
        # Peak-normalised to -6 dBFS like the loud GSC noise files.
        segment = track[:num_samples]
        segment = segment * (0.5 / max(np.abs(segment).max(), 1e-12))
        write_wav(os.path.join(folder, name), segment, sample_rate)


def _write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as file:
        for row in [header, *rows]:
            file.write("\t".join(str(field) for field in row) + "\n")


def write_mc_kws_metadata(output_dir, entries, speakers, language):
    """Writes `UTTRANSINFO.txt` and `SPKINFO.txt`.

    Args:
        output_dir: root of the MC-KWS-format tree.
        entries: `(speaker, keyword, file_name)` of every clip.
        speakers: the corpus's `Speaker`s.
        language: eSpeak NG language the speakers spoke.
    """
    _write_tsv(
        os.path.join(output_dir, "UTTRANSINFO.txt"),
        ("SPEAKER_ID", "UTTRANS_ID", "PROMPT", "TRANSCRIPTION"),
        [(speaker.speaker_id, name, keyword, keyword) for speaker, keyword, name in entries],
    )
    _write_tsv(
        os.path.join(output_dir, "SPKINFO.txt"),
        ("SPEAKER_ID", "AGE", "GENDER", "VOICE", "PITCH", "RATE"),
        [
            (
                speaker.speaker_id,
                speaker.age,
                speaker.gender,
                f"{language}+{speaker.variant}",
                speaker.pitch,
                speaker.rate,
            )
            for speaker in speakers
        ],
    )


def write_mc_kws_split_info(output_dir, split_of):
    """Writes `SPLITINFO.txt`: each speaker's split (`train`, `valid`, `test`)."""
    _write_tsv(
        os.path.join(output_dir, "SPLITINFO.txt"),
        ("SPEAKER_ID", "SPLIT"),
        sorted(split_of.items()),
    )
