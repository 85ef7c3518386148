"""Checks that requirements.txt pins every requirement of pyproject.toml within its range.

pyproject.toml says which versions the package accepts; requirements.txt says which ones the tests
passed with. A dependency added to one and not the other, or a pin outside the accepted range, fails
here with one line per problem (exit status 1).

Usage: python .ci/check_requirements.py [project root]
"""

import pathlib
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The extras the tests install (`.[test]` pulls in `kws` and `serving`).
TESTED_EXTRAS = ("test",)


def declared(project, extras):
    """Every requirement of the core package and of `extras`, following self-references."""
    name = canonicalize_name(project["project"]["name"])
    optional = project["project"].get("optional-dependencies", {})
    found, pending, seen = (
        list(map(Requirement, project["project"]["dependencies"])),
        list(extras),
        set(),
    )
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == name:
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def pinned(path):
    """`{canonical name: version}` of the `name==version` lines of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise SystemExit(f"{path}: {line!r} is not pinned as name==version; pin it.")
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def problems(root):
    root = pathlib.Path(root)
    project = tomllib.loads((root / "pyproject.toml").read_text())
    pins = pinned(root / "requirements.txt")
    found = []
    for requirement in declared(project, TESTED_EXTRAS):
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            found.append(
                f"{requirement.name} ({requirement.specifier}) is not pinned in requirements.txt"
            )
        elif not requirement.specifier.contains(version, prereleases=True):
            found.append(
                f"requirements.txt pins {requirement.name}=={version}, outside pyproject.toml's "
                f"{requirement.specifier}"
            )
    return found


def main(argv):
    root = argv[1] if len(argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    found = problems(root)
    for problem in found:
        print(f"check_requirements: {problem}")
    if not found:
        print(
            "check_requirements: requirements.txt pins every requirement of pyproject.toml in range"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
