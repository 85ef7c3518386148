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
    assert transfer.gsc2_dir != pretraining.gsc2_dir


@pytest.mark.parametrize("synthetic_corpus", sorted(synthetic.DEFAULT_CORPORA))
def test_a_data_dir_is_used_for_both(monkeypatch, tmp_path, synthetic_corpus):
    requested = _record_corpora(monkeypatch, tmp_path)
    (tmp_path / "real" / "gsc2").mkdir(parents=True)
    source = tasks.resolve_data_dir(str(tmp_path / "real"), synthetic_corpus=synthetic_corpus)
    assert requested == []
    assert source.gsc2_dir == str(tmp_path / "real" / "gsc2") and not source.synthetic
