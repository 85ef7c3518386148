"""A missing optional dependency is one line naming the extra that installs it."""

import pytest

from swr_keras.optional import require


def test_present_module_is_returned():
    assert require("json", "kws", "Anything").dumps([1]) == "[1]"


def test_missing_module_names_the_extra():
    with pytest.raises(ImportError) as raised:
        require("no_such_module_xyz.sub", "kws", "Running TFLite files")
    message = str(raised.value)
    assert "\n" not in message
    assert "Running TFLite files needs the 'no_such_module_xyz' package" in message
    assert "pip install 'swr_keras[kws]'" in message
