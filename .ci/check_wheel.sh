#!/usr/bin/env bash
# The package stands on its own: build the wheel, install it with the `kws` extra into a fresh
# virtual environment outside the checkout, and run there what a new user runs first:
# the imports of every part, the README's library example, `recipes/kws.py --help`, `pip check`.
# Usage: bash .ci/check_wheel.sh [python]
set -euo pipefail
python=${1:-python3}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# From a copy: building in place would leave build/ in the checkout, whose stale files a later
# build would package.
mkdir "$work/src"
tar -C "$top" --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./runs \
  --exclude='*.egg-info' -cf - . | tar -C "$work/src" -xf -
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/swr_keras-*.whl)
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet "$wheel[kws]"
"$work/venv/bin/python" -m pip check

# Outside the checkout, so that `swr_keras` can only come from the wheel; the recipes travel as
# the package they are (`python -m recipes.kws`), without the checkout's library beside them.
cp -r "$top/recipes" "$work/recipes"
mkdir -p "$work/saved_models" && cp -r "$top/saved_models/bc_resnet8_multilingual" "$work/saved_models/"
cd "$work"
export TF_CPP_MIN_LOG_LEVEL=3
"$work/venv/bin/python" - <<'PY'
import swr_keras
import swr_keras.data.synthetic
import swr_keras.kws.job
import swr_keras.kws.tflite_export
import swr_keras.kws.tuning

assert "site-packages" in swr_keras.__file__, swr_keras.__file__
print("imports from the wheel:", swr_keras.__file__)
PY
"$work/venv/bin/python" -m recipes.kws --help > help.txt
grep -q -- "--target_cost" help.txt
echo "python -m recipes.kws --help: $(wc -l < help.txt) lines"

# The README's library example, with a tiny pre-trained model and data in front of it.
sed -n '/^## The library in one screen/,/^## /p' "$top/README.md" \
  | awk '/^```python$/{on=1; next} /^```$/{if (on) exit} on' > example.py
test -s example.py
cat > run_example.py <<'PY'
import keras
import numpy as np
import tensorflow as tf

inputs = keras.Input((8, 8, 1))
features = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
features = keras.layers.BatchNormalization()(features)
features = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(features))
pretrained = keras.Model(inputs, keras.layers.Dense(3)(features))
rng = np.random.default_rng(0)
train_ds = tf.data.Dataset.from_tensor_slices(
    (rng.normal(size=(16, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 16))
).batch(8)
exec(open("example.py").read().replace("epochs=30", "epochs=1"))
x = next(iter(train_ds))[0]
np.testing.assert_allclose(deployable(x), trainer.model(x), atol=1e-5)
print("README library example: ran; merged model equals the trained one")
PY
"$work/venv/bin/python" run_example.py
