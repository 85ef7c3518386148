"""Backbones built once per test module (building BC-ResNet costs seconds)."""

import pytest

from tests.module_methods import helpers


@pytest.fixture(scope="module")
def backbones():
    return helpers.tiny_backbones()


@pytest.fixture(scope="module")
def data():
    return helpers.batch()
