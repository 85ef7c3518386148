"""The object classes of the synthetic image corpus, as geometry.

Each class is a function of nothing that returns its outline in unit
coordinates (the object fits in [-1, 1]^2, y down): a list of closed
polygons, each `(points [n, 2], is_hole)`. Filled renderings paint the
non-hole polygons and cut the holes out again; line sketches draw every
polygon's edges. Poses (rotation, scale, position) are applied by the
renderers, so a class is recognised by its shape alone in every domain.
"""

import numpy as np


def _regular(sides, radius=1.0, phase=0.0):
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return np.stack([radius * np.sin(angles), -radius * np.cos(angles)], axis=1)


def _arc(radius, start, stop, steps=32, centre=(0.0, 0.0)):
    angles = np.linspace(start, stop, steps)
    return np.stack(
        [centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1
    )


def circle():
    return [(_regular(48), False)]


def square():
    return [(_regular(4, 1.0, np.pi / 4) / np.sqrt(2) * 1.35, False)]


def triangle():
    return [(_regular(3, 1.0) + np.array([0.0, 0.2]), False)]


def star():
    outer, inner = _regular(5, 1.0), _regular(5, 0.42, np.pi / 5)
    return [(np.stack([outer, inner], axis=1).reshape(-1, 2), False)]


def cross():
    a, b = 0.3, 0.95
    points = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b)]
    points += [(-a, a), (-b, a), (-b, -a), (-a, -a)]
    return [(np.array(points, float), False)]


def ring():
    return [(_regular(48), False), (_regular(48, 0.55), True)]


def hexagon():
    return [(_regular(6, 1.0, np.pi / 6), False)]


def arrow():
    points = [(-0.95, -0.25), (0.15, -0.25), (0.15, -0.7), (0.95, 0.0)]
    points += [(0.15, 0.7), (0.15, 0.25), (-0.95, 0.25)]
    return [(np.array(points, float), False)]


def crescent():
    outer = _arc(1.0, 0.35 * np.pi, 1.65 * np.pi, 40)
    # The inner edge: an arc of a circle shifted left, walked back.
    inner = _arc(0.8, 1.55 * np.pi, 0.45 * np.pi, 40, centre=(-0.45, 0.0))
    return [(np.concatenate([outer, inner]), False)]


def house():
    points = [(-0.7, 1.0), (-0.7, -0.1), (0.0, -0.95), (0.7, -0.1), (0.7, 1.0)]
    door = [(-0.18, 1.0), (-0.18, 0.45), (0.18, 0.45), (0.18, 1.0)]
    return [(np.array(points, float), False), (np.array(door, float), True)]


CLASSES = {
    "arrow": arrow,
    "circle": circle,
    "crescent": crescent,
    "cross": cross,
    "hexagon": hexagon,
    "house": house,
    "ring": ring,
    "square": square,
    "star": star,
    "triangle": triangle,
}
CLASS_NAMES = tuple(sorted(CLASSES))


def posed(name, rng, size):
    """Polygons of class `name` in pixel coordinates of a `size` x `size` image.

    A random pose: rotation within +-35 degrees (so a square stays a square,
    not a diamond, and an arrow keeps pointing right), half-size 28-42 % of
    the image, centre within 12 % of the middle.
    """
    angle = np.deg2rad(rng.uniform(-35, 35))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scale = rng.uniform(0.28, 0.42) * size
    centre = size / 2 + rng.uniform(-0.12, 0.12, size=2) * size
    return [(points @ rotation.T * scale + centre, hole) for points, hole in CLASSES[name]()]
