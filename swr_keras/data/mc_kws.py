"""MC-KWS (MagicHub Mandarin keyword spotting), 12-way, speaker-disjoint.

Two layouts are read:

- MagicHub: `<root>/WAV/<SPEAKER_ID>/<utt>.wav` with a tab-separated
  `<root>/UTTRANSINFO.txt` (header line naming at least SPEAKER_ID,
  UTTRANS_ID and TRANSCRIPTION; the transcription is the keyword).
  `SPKINFO.txt` is not needed: speakers come from UTTRANSINFO.
- Plain: `<root>/<keyword>/<speaker>_<n>.wav`.

A JSON mapping file decides the classes (`{"known": [...], "unknown": [...],
"excluded": [...], "clip_seconds": 2.24}`): `_silence_` (GSC2 background
noise), `_unknown_` (the "unknown" keywords), then the known keywords in
their listed order. Excluded keywords are dropped; a keyword in none of the
lists is an error, never a silent `_unknown_`.

Audio (48 kHz by default) is resampled to 16 kHz in-graph and padded to
`clip_seconds`; longer clips (the corpus has 1.3-6.2 s utterances) keep
their highest-energy `clip_seconds` window (or, with `crop="start"`, their
beginning), and how many were cropped is logged and stored in
`ClipTable.num_cropped`. Speakers are split 25/6/6 (or
proportionally, at least one each, when there are fewer than 37), seeded;
a tab-separated `<root>/SPLITINFO.txt` (header `SPEAKER_ID`, `SPLIT`; splits
`train`, `valid`, `test`), as the synthetic corpus writes, fixes the split
instead.
`_silence_` gets as many clips per split as the largest known class, capped
by `silence_caps` when given; test silence holds fixed noise segments as in
`gsc2`.
"""

import json
import logging
import os

import numpy as np

from swr_keras.data import audio, augment, pipeline

_LOG = logging.getLogger(__name__)

DEFAULT_MAPPING = os.path.join(os.path.dirname(__file__), "mc_kws_mapping.json")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
SPEAKER_SPLIT = (25, 6, 6)
SPLIT_INFO = "SPLITINFO.txt"
OUTPUT_RATE = 16000


def load_mapping(path=DEFAULT_MAPPING):
    """Reads and validates a class-mapping JSON file.

    Returns:
        dict with `known`, `unknown`, `excluded` (lists of str) and
        `clip_seconds` (float).

    Raises:
        FileNotFoundError: no such file.
        ValueError: malformed JSON, missing keys or overlapping lists.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MC-KWS class mapping not found: {path}. Pass mapping_path= a "
            'JSON file {"known": [...], "unknown": [...], "excluded": [...], '
            '"clip_seconds": 2.24}.'
        )
    try:
        with open(path, encoding="utf-8") as handle:
            mapping = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    for key in ("known", "unknown", "excluded", "clip_seconds"):
        if key not in mapping:
            raise ValueError(f"{path} has no {key!r} entry.")
    words = {}
    for key in ("known", "unknown", "excluded"):
        if not isinstance(mapping[key], list) or not all(
            isinstance(w, str) and w.strip() for w in mapping[key]
        ):
            raise ValueError(f"{path}: {key!r} must be a list of keywords.")
        for word in mapping[key]:
            if word.strip() in words:
                raise ValueError(
                    f"{path}: keyword {word!r} appears in both {words[word.strip()]!r} and {key!r}."
                )
            words[word.strip()] = key
    if not mapping["known"]:
        raise ValueError(f"{path}: 'known' must list at least one keyword.")
    clip_seconds = mapping["clip_seconds"]
    if not isinstance(clip_seconds, (int, float)) or clip_seconds <= 0:
        raise ValueError(
            f"{path}: clip_seconds must be a positive number. Received: {clip_seconds!r}"
        )
    return {
        "known": [w.strip() for w in mapping["known"]],
        "unknown": [w.strip() for w in mapping["unknown"]],
        "excluded": [w.strip() for w in mapping["excluded"]],
        "clip_seconds": float(clip_seconds),
    }


def split_speakers(speakers, seed=0, proportions=SPEAKER_SPLIT):
    """Assigns speakers to train/valid/test, disjoint and seeded.

    With `sum(proportions)` speakers the split is exact (25/6/6); with fewer
    or more, valid and test get `round(n * share)` speakers, at least one.

    Returns:
        dict split -> sorted list of speaker ids.
    """
    speakers = sorted(set(speakers))
    if len(speakers) < 3:
        raise ValueError(
            f"A speaker-disjoint split needs at least 3 speakers. "
            f"Received: {len(speakers)} ({speakers})"
        )
    total = float(sum(proportions))
    num_valid = max(1, int(round(len(speakers) * proportions[1] / total)))
    num_test = max(1, int(round(len(speakers) * proportions[2] / total)))
    num_train = len(speakers) - num_valid - num_test
    if num_train < 1:
        num_valid = num_test = 1
        num_train = len(speakers) - 2
    order = np.random.default_rng(seed).permutation(len(speakers))
    shuffled = [speakers[i] for i in order]
    bounds = (0, num_train, num_train + num_valid, len(speakers))
    return {
        split: sorted(shuffled[bounds[i] : bounds[i + 1]])
        for i, split in enumerate(pipeline.SPLITS)
    }


def read_split_info(root, speakers):
    """The fixed speaker split of `<root>/SPLITINFO.txt`, or None without one.

    Returns:
        dict speaker id -> split (`train`, `valid` or `test`).

    Raises:
        ValueError: a malformed file, an unknown split name, a listed speaker
            twice, or a speaker of the corpus the file does not list.
    """
    path = os.path.join(root, SPLIT_INFO)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    if not lines or [h.strip() for h in lines[0].split("\t")] != ["SPEAKER_ID", "SPLIT"]:
        raise ValueError(
            f"{path}: expected a tab-separated header line SPEAKER_ID, SPLIT. "
            "Fix the file, or delete it to split the speakers by seed."
        )
    split_of = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 2 or fields[1] not in pipeline.SPLITS or fields[0] in split_of:
            raise ValueError(
                f"{path}, line {number}: {line!r} is not a new speaker id and one of "
                f"{', '.join(pipeline.SPLITS)}, tab-separated."
            )
        split_of[fields[0]] = fields[1]
    missing = sorted(set(speakers) - set(split_of))
    if missing:
        raise ValueError(
            f"{path} gives no split for speaker(s) {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; add them, or delete the file to "
            "split the speakers by seed."
        )
    return split_of


def _magichub_rows(root):
    info_path = os.path.join(root, "UTTRANSINFO.txt")
    with open(info_path, encoding="utf-8-sig") as handle:
        lines = handle.read().splitlines()
    header = [h.strip() for h in lines[0].split("\t")] if lines else []
    missing = [c for c in ("SPEAKER_ID", "UTTRANS_ID", "TRANSCRIPTION") if c not in header]
    if missing:
        raise ValueError(
            f"{info_path}: header line lacks column(s) {missing}; expected a "
            "tab-separated header with SPEAKER_ID, UTTRANS_ID, PROMPT, "
            "TRANSCRIPTION."
        )
    columns = [header.index(c) for c in ("SPEAKER_ID", "UTTRANS_ID", "TRANSCRIPTION")]
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < len(header):
            raise ValueError(
                f"{info_path}, line {number}: {len(fields)} tab-separated "
                f"fields, expected {len(header)}."
            )
        speaker, utterance, keyword = (fields[c].strip() for c in columns)
        if not utterance.endswith(".wav"):
            utterance += ".wav"
        path = os.path.join(root, "WAV", speaker, utterance)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{info_path}, line {number} names {path}, which does not "
                "exist. Restore the file or delete the line."
            )
        yield path, keyword, speaker


def _plain_rows(root):
    for keyword in sorted(os.listdir(root)):
        folder = os.path.join(root, keyword)
        if not os.path.isdir(folder) or keyword.startswith("."):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".wav"):
                continue
            stem = os.path.splitext(name)[0]
            if "_" not in stem:
                raise ValueError(
                    f"{os.path.join(folder, name)}: cannot read the speaker; "
                    "plain-layout files are named <speaker>_<n>.wav."
                )
            yield os.path.join(folder, name), keyword, stem.rsplit("_", 1)[0]


def list_mc_kws(
    root,
    noise_dir,
    mapping_path=DEFAULT_MAPPING,
    seed=0,
    sample_rate=48000,
    clip_seconds=None,
    silence_caps=None,
    unknown_caps=None,
    crop="energy",
):
    """Lists MC-KWS into a 12-class `KwsCorpus` (validating every WAV).

    Args:
        root: str, corpus directory (MagicHub or plain layout).
        noise_dir: str, GSC2's `_background_noise_` folder (silence class
            and noise augmentation).
        mapping_path: str, the class-mapping JSON file.
        seed: int, for the speaker split (unless `SPLITINFO.txt` fixes it),
            the `_unknown_` subsets and the fixed test silence.
        sample_rate: int, the rate every file must have (resampled to
            16 kHz in-graph).
        clip_seconds: float; default the mapping's `clip_seconds`.
        silence_caps: optional 3 ints, most silence clips per split.
        unknown_caps: optional 3 ints, most `_unknown_` clips per split
            (seeded subset); default: keep all.
        crop: how clips longer than `clip_seconds` are cropped:
            `"energy"` (their highest-energy window) or `"start"` (their
            beginning, for corpora that put the keyword there).

    Returns:
        A `pipeline.KwsCorpus` with class names `(_silence_, _unknown_,
        *known)`.

    Raises:
        FileNotFoundError: missing directory, mapping, noise or listed file.
        ValueError: an unmapped keyword, an empty class, fewer than 3
            speakers, or an invalid WAV file (named in the message).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"MC-KWS directory not found: {root}. Pass the folder holding "
            "WAV/ and UTTRANSINFO.txt (or <keyword>/<speaker>_<n>.wav)."
        )
    if crop not in audio.CROP_MODES:
        raise ValueError(f"crop must be one of {audio.CROP_MODES}. Received: crop={crop!r}")
    mapping = load_mapping(mapping_path)
    clip_seconds = mapping["clip_seconds"] if clip_seconds is None else clip_seconds
    clip_samples = int(round(clip_seconds * OUTPUT_RATE))
    class_names = (SILENCE, UNKNOWN) + tuple(mapping["known"])
    label_of = {w: 2 + i for i, w in enumerate(mapping["known"])}
    label_of.update({w: 1 for w in mapping["unknown"]})
    noise_bank = augment.NoiseBank.from_directory(noise_dir, OUTPUT_RATE, clip_samples)

    if os.path.isfile(os.path.join(root, "UTTRANSINFO.txt")):
        source = _magichub_rows(root)
    else:
        source = _plain_rows(root)
    rows, num_excluded, num_cropped = [], 0, 0
    for path, keyword, speaker in source:
        if keyword in mapping["excluded"]:
            num_excluded += 1
            continue
        if keyword not in label_of:
            raise ValueError(
                f"{path}: keyword {keyword!r} is not in {mapping_path}. Add "
                "it to 'known', 'unknown' or 'excluded'."
            )
        info = audio.validate_wav(path, sample_rate)
        num_cropped += info.seconds > clip_seconds
        rows.append((path, label_of[keyword], speaker, info.seconds))
    counts = np.bincount([r[1] for r in rows], minlength=len(class_names))
    for label in range(1, len(class_names)):
        if counts[label] == 0:
            raise ValueError(
                f"Class {class_names[label]!r} has no clips under {root}. "
                f"Check the corpus or the mapping {mapping_path}."
            )
    if num_cropped:
        _LOG.warning(
            "%d of %d MC-KWS clips are longer than %.2f s; each is cropped to %s %.2f s.",
            num_cropped,
            len(rows),
            clip_seconds,
            "its highest-energy" if crop == "energy" else "its first",
            clip_seconds,
        )
    _LOG.info("MC-KWS: %d clips, %d excluded by the mapping.", len(rows), num_excluded)

    split_of = read_split_info(root, {r[2] for r in rows})
    if split_of is None:
        speakers_of = split_speakers([r[2] for r in rows], seed)
        split_of = {s: split for split, group in speakers_of.items() for s in group}
    splits = {}
    for index, split in enumerate(pipeline.SPLITS):
        rng = np.random.default_rng([seed, index])
        files = [r for r in rows if split_of[r[2]] == split]
        unknown = [r for r in files if r[1] == 1]
        files = [r for r in files if r[1] != 1]
        if unknown_caps is not None:
            chosen = rng.permutation(len(unknown))[: unknown_caps[index]]
            unknown = [unknown[i] for i in sorted(chosen)]
        files += unknown
        known_counts = np.bincount([r[1] for r in files if r[1] >= 2], minlength=len(class_names))
        num_silence = int(known_counts.max())
        if silence_caps is not None:
            num_silence = min(num_silence, silence_caps[index])
        splits[split] = (
            pipeline.split_table(
                files,
                sample_rate,
                num_silence,
                noise_bank,
                clip_samples,
                rng,
                fixed_noise=split == "test",
                num_cropped=sum(r[3] > clip_seconds for r in files),
                crop=crop,
            ),
        )
    return pipeline.KwsCorpus(
        class_names=class_names,
        splits=splits,
        noise_bank=noise_bank,
        clip_samples=clip_samples,
        sample_rate=OUTPUT_RATE,
    )
