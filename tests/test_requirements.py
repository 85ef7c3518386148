"""requirements.txt (the tested setup) agrees with pyproject.toml (the accepted ranges)."""

import importlib.util
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_requirements", ROOT / ".ci" / "check_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy(tmp_path):
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_checkout_pins_every_declared_requirement_in_range():
    assert _checker().problems(ROOT) == []


def test_a_declared_requirement_missing_from_the_pins_is_named(tmp_path):
    root = _copy(tmp_path)
    path = root / "requirements.txt"
    path.write_text(
        "".join(l for l in path.read_text().splitlines(True) if not l.startswith("keras=="))
    )
    assert _checker().problems(root) == ["keras (<4,>=3.15) is not pinned in requirements.txt"]


def test_a_pin_outside_the_declared_range_is_named(tmp_path):
    root = _copy(tmp_path)
    path = root / "requirements.txt"
    text = path.read_text()
    pin = next(l for l in text.splitlines() if l.startswith("tensorflow=="))
    path.write_text(text.replace(pin, "tensorflow==2.20.0"))
    (problem,) = _checker().problems(root)
    assert problem.startswith("requirements.txt pins tensorflow==2.20.0, outside")


def test_an_extra_reached_through_another_extra_is_checked(tmp_path):
    """`test` pulls in `kws`, whose espeakng-loader must be pinned too."""
    root = _copy(tmp_path)
    path = root / "requirements.txt"
    path.write_text(
        "".join(l for l in path.read_text().splitlines(True) if not l.startswith("espeakng-loader"))
    )
    assert [p.split(" ")[0] for p in _checker().problems(root)] == ["espeakng-loader"]


def test_an_unpinned_line_stops_the_check(tmp_path):
    root = _copy(tmp_path)
    (root / "requirements.txt").write_text("numpy>=1.26\n")
    with pytest.raises(SystemExit, match="not pinned as name==version"):
        _checker().problems(root)
