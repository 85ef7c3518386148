"""The tf.data pipeline: element specs, labels with the right audio, seeding."""

import numpy as np
import pytest
import tensorflow as tf

from swr_keras.data import features, gsc2, pipeline
from tests.data.conftest import GSC_KEYWORDS, GSC_UNKNOWN_WORDS, gsc_frequency


@pytest.fixture(scope="module")
def corpus(gsc2_root):
    return gsc2.list_gsc2(gsc2_root, seed=0)


def _dominant_hz(waveform, sample_rate=16000):
    spectrum = np.abs(np.fft.rfft(waveform))
    return np.argmax(spectrum) * sample_rate / len(waveform)


def _word_of(frequency):
    words = GSC_KEYWORDS + GSC_UNKNOWN_WORDS
    return min(words, key=lambda w: abs(gsc_frequency(w) - frequency))


def test_test_waveforms_carry_their_labels(corpus):
    dataset = pipeline.make_dataset(corpus, "test", batch_size=8, features=False)
    seen = 0
    for waves, labels in dataset:
        assert waves.dtype == tf.float32 and labels.dtype == tf.int32
        assert waves.shape[1] == 16000
        for wave, label in zip(waves.numpy(), labels.numpy()):
            name = corpus.class_names[label]
            if name == "_silence_":
                assert np.abs(wave).max() > 0  # fixed noise, not zeros
                continue
            word = _word_of(_dominant_hz(wave))
            assert name == (word if word in GSC_KEYWORDS else "_unknown_")
            seen += 1
    assert seen == len(corpus.splits["test"][0]) - corpus.class_counts("test")["_silence_"]


def test_train_features_spec_and_seeding(corpus):
    def first_epochs(seed):
        dataset = pipeline.make_dataset(corpus, "train", batch_size=16, seed=seed)
        return [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]

    a, b, c = first_epochs(3), first_epochs(3), first_epochs(4)
    x, y = a[0][0]
    assert x.shape == (16, 40, 101, 1) and y.shape == (16,)
    for (xa, ya), (xb, yb) in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # A new epoch reshuffles and re-augments; another seed differs.
    assert not np.array_equal(a[0][0][1], a[1][0][1])
    assert not np.array_equal(a[0][0][1], c[0][0][1])
    labels = np.concatenate([y for _, y in a[0]])
    np.testing.assert_array_equal(
        np.bincount(labels, minlength=12), list(corpus.class_counts("train").values())
    )


def test_valid_augments_silence_only(corpus):
    plain = pipeline.make_dataset(
        corpus, "valid", batch_size=64, features=False, augment_mode="test"
    )
    noisy = pipeline.make_dataset(corpus, "valid", batch_size=64, features=False)
    ((x0, y0),) = list(plain)
    ((x1, y1),) = list(noisy)
    np.testing.assert_array_equal(y0, y1)
    keyword = y0.numpy() != 0
    np.testing.assert_array_equal(x0.numpy()[keyword], x1.numpy()[keyword])
    assert np.all(x0.numpy()[~keyword] == 0)
    assert np.all(np.abs(x1.numpy()[~keyword]).max(axis=1) > 0)


def test_features_equal_logmel_of_waveforms(corpus):
    waves = pipeline.make_dataset(corpus, "test", batch_size=32, features=False)
    feats = pipeline.make_dataset(corpus, "test", batch_size=32)
    ((w, _),) = list(waves.take(1))
    ((f, _),) = list(feats.take(1))
    np.testing.assert_allclose(f.numpy(), features.LogMel()(w), atol=1e-5)


def test_spec_augment_needs_features(corpus):
    with pytest.raises(ValueError, match="spec_augment=True needs features"):
        pipeline.make_dataset(corpus, "train", features=False, spec_augment=True)


def test_unknown_split(corpus):
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        pipeline.make_dataset(corpus, "dev")
