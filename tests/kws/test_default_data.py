"""Which synthetic corpus stands in when no --data_dir is given."""

import pytest

from swr_keras.data import synthetic
from swr_keras.kws import tasks


def _record_corpora(monkeypatch, tmp_path):
    requested = []

    def fake_ensure(cache_dir, num_workers, corpus):
        requested.append(corpus)
        root = tmp_path / synthetic.DEFAULT_CORPORA[corpus].name
        return synthetic.CorpusPaths(gsc2=str(root / "gsc2"), mc_kws=str(root / "mc_kws"))

    monkeypatch.setattr(synthetic, "ensure_default_corpus", fake_ensure)
    return requested


def test_transfer_is_the_default_and_pretraining_is_asked_for(monkeypatch, tmp_path):
    requested = _record_corpora(monkeypatch, tmp_path)
    transfer = tasks.resolve_data_dir("", cache_dir=str(tmp_path))
    pretraining = tasks.resolve_data_dir(
        None, cache_dir=str(tmp_path), synthetic_corpus="pretraining"
    )
    assert requested == ["transfer", "pretraining"]
    assert transfer.synthetic and pretraining.synthetic
    assert (transfer.synthetic_corpus, pretraining.synthetic_corpus) == ("transfer", "pretraining")
    assert transfer.gsc2_dir != pretraining.gsc2_dir


@pytest.mark.parametrize("synthetic_corpus", sorted(synthetic.DEFAULT_CORPORA))
def test_a_data_dir_is_used_for_both(monkeypatch, tmp_path, synthetic_corpus):
    requested = _record_corpora(monkeypatch, tmp_path)
    (tmp_path / "real" / "gsc2").mkdir(parents=True)
    source = tasks.resolve_data_dir(str(tmp_path / "real"), synthetic_corpus=synthetic_corpus)
    assert requested == []
    assert source.gsc2_dir == str(tmp_path / "real" / "gsc2") and not source.synthetic


def test_listed_splits_match_the_plan_with_one_keyword_caps(monkeypatch, tmp_path):
    # A default corpus shaped like the transfer one, small: 6 GSC2 speakers at
    # 34 / 34 % (2 / 2 / 2) and MC-KWS speakers 2 / 2 / 2, one clip per word.
    mapping = synthetic.load_mc_kws_mapping()
    tiny = synthetic.DefaultCorpus(
        "tiny_v1",
        {
            "words": synthetic.GSC_KEYWORDS + ("cat", "dog"),
            "num_speakers": 6,
            "clips_per_word": 1,
            "validation_percentage": 34.0,
            "testing_percentage": 34.0,
            "background_noise_seconds": 3.0,
            "heldout_voices": True,
        },
        {
            "keywords": mapping["known"] + mapping["unknown"][:2],
            "speaker_split": (2, 2, 2),
            "clips_per_word": 1,
            "clip_seconds_range": (1.3, 2.3),
            "heldout_voices": True,
        },
    )
    monkeypatch.setitem(synthetic.DEFAULT_CORPORA, "tiny", tiny)
    source = tasks.resolve_data_dir("", cache_dir=str(tmp_path), synthetic_corpus="tiny")
    plans = synthetic.split_plan("tiny")
    for task in ("gsc2", "mc_kws"):
        corpus = tasks.list_task(task, source, seed=0)
        speakers = []
        for index, split in enumerate(("train", "valid", "test")):
            counts = corpus.class_counts(split)
            # 2 speakers x 1 clip per class; `_unknown_` has 2 words x 2 = 4
            # clips and keeps one keyword's count, 2; `_silence_` 2: 12 x 2.
            assert set(counts.values()) == {2}, (task, split, counts)
            assert sum(counts.values()) == 24 == plans[task].task_clips[index]
            assert plans[task].unknown_caps[index] == 2
            speakers.append(set(corpus.splits[split][0].speakers) - {""})
        assert [len(group) for group in speakers] == [2, 2, 2]
        assert len(set().union(*speakers)) == 6
