"""Renderers of the synthetic image domains: one class, one pose, one image.

Every renderer takes the polygons of a posed object (`shapes.posed`), a
NumPy generator and the image size, and returns an RGB `uint8` array. They
share nothing but the geometry, so the domains differ the way ImageNet and
the ImageNet-to-Sketch targets do:

- `photo` (the source domain): a filled, shaded object whose hue leans to its
  class (as real objects have typical colours), on a smooth two-colour
  background with sensor noise.
- `sketch`: black pencil outlines, drawn twice with a shaky hand, on white
  paper; no colour, no fill, stray strokes.
- `painting`: a flat object of any colour with a dark contour, on a
  background of broad random brush strokes, blurred and posterised.
- `texture`: the object filled with a striped, checked or dotted pattern of
  random colours and outlined, on a background of another pattern.

Objects are drawn at twice the size and downsampled, for smooth edges.
"""

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLING = 2


def _mask(polygons, size):
    """The object's filled area as a float mask [size, size] in [0, 1]."""
    big = size * SUPERSAMPLING
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    for points, hole in polygons:
        draw.polygon([tuple(p) for p in points * SUPERSAMPLING], fill=0 if hole else 255)
    return np.asarray(mask.resize((size, size), Image.LANCZOS), np.float32) / 255.0


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255.0


def _gradient(rng, size, first, second):
    """A linear blend from colour `first` to `second` along a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    t = np.clip(0.5 + x * np.cos(angle) + y * np.sin(angle), 0, 1)[..., None]
    return first * (1 - t) + second * t


def _composite(background, foreground, mask):
    mask = mask[..., None]
    return background * (1 - mask) + foreground * mask


def _to_uint8(image):
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def photo(polygons, rng, size, class_index, num_classes):
    """A shaded object of its class's typical hue on a soft background."""
    hue = class_index / num_classes + rng.normal(0, 0.05)
    colour = _hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.55, 0.95))
    shading = _gradient(rng, size, colour * 1.25, colour * 0.6)
    background = _gradient(
        rng,
        size,
        _hsv(rng.uniform(), rng.uniform(0, 0.35), rng.uniform(0.45, 0.95)),
        _hsv(rng.uniform(), rng.uniform(0, 0.35), rng.uniform(0.45, 0.95)),
    )
    # A soft shadow under the object, offset towards the bottom right.
    shadow = np.roll(_mask(polygons, size), (size // 24, size // 24), axis=(0, 1))
    background = background * (1 - 0.35 * shadow[..., None])
    image = _composite(background, shading, _mask(polygons, size))
    return _to_uint8(image + rng.normal(0, 6, image.shape))


def _shaky_outline(points, rng, size, jitter):
    """Points along a closed polygon's edges, each displaced a little."""
    closed = np.concatenate([points, points[:1]])
    walk = []
    for start, stop in zip(closed[:-1], closed[1:]):
        steps = max(int(np.linalg.norm(stop - start) / (size / 16)), 1)
        for t in np.arange(steps) / steps:
            walk.append(start + t * (stop - start))
    walk.append(closed[-1])
    walk = np.array(walk)
    # Smooth noise: a shaky but continuous hand.
    noise = rng.normal(0, jitter, walk.shape)
    noise = (noise + np.roll(noise, 1, axis=0) + np.roll(noise, -1, axis=0)) / 3
    return walk + noise


def sketch(polygons, rng, size, class_index, num_classes):
    """Pencil outlines on paper: drawn twice, shaky, with stray strokes."""
    del class_index, num_classes
    big = size * SUPERSAMPLING
    paper = Image.new("L", (big, big), int(rng.uniform(235, 255)))
    draw = ImageDraw.Draw(paper)
    for points, _ in polygons:
        for _ in range(2):
            outline = _shaky_outline(points, rng, size, jitter=size / 90) * SUPERSAMPLING
            draw.line(
                [tuple(p) for p in outline],
                fill=int(rng.uniform(0, 90)),
                width=int(rng.integers(2, 4)),
            )
    for _ in range(int(rng.integers(0, 4))):
        start = rng.uniform(0, big, 2)
        stop = start + rng.normal(0, big / 8, 2)
        draw.line([tuple(start), tuple(stop)], fill=int(rng.uniform(60, 160)), width=2)
    grey = np.asarray(paper.resize((size, size), Image.LANCZOS), np.float32)
    return _to_uint8(np.repeat(grey[..., None], 3, axis=2) + rng.normal(0, 3, (size, size, 3)))


def _contour(mask):
    """The edge of a [0, 1] mask, about two pixels wide, in [0, 1]."""
    edges = Image.fromarray(_to_uint8(mask * 255)).filter(ImageFilter.FIND_EDGES)
    return np.clip(np.asarray(edges, np.float32) / 255.0 * 2, 0, 1)


def _brush_strokes(rng, size, count):
    """Broad strokes of random colours over a random ground."""
    canvas = Image.new("RGB", (size, size), tuple(int(c) for c in _hsv(rng.uniform(), 0.5, 0.8)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        start = rng.uniform(-0.1, 1.1, 2) * size
        stop = start + rng.normal(0, size / 3, 2)
        colour = _hsv(rng.uniform(), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0))
        draw.line(
            [tuple(start), tuple(stop)],
            fill=tuple(int(c) for c in colour),
            width=int(rng.integers(size // 10, size // 4)),
        )
    return np.asarray(canvas, np.float32)


def painting(polygons, rng, size, class_index, num_classes):
    """A flat object of any colour with a dark contour, over brush strokes; blurred, posterised."""
    del class_index, num_classes
    background = _brush_strokes(rng, size, int(rng.integers(6, 12)))
    colour = _hsv(rng.uniform(), rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0))
    fill = np.broadcast_to(colour, background.shape) + rng.normal(0, 18, background.shape)
    mask = _mask(polygons, size)
    image = _composite(background, fill, mask)
    image = _composite(image, np.full_like(image, 30.0), _contour(mask) * 0.8)
    picture = Image.fromarray(_to_uint8(image)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2))
    )
    levels = int(rng.integers(4, 7))
    step = 256 // levels
    return (np.asarray(picture) // step * step + step // 2).astype(np.uint8)


def _pattern(rng, size):
    """A striped, checked or dotted pattern of two random colours."""
    first = _hsv(rng.uniform(), rng.uniform(0.3, 1), rng.uniform(0.2, 1))
    second = _hsv(rng.uniform(), rng.uniform(0.3, 1), rng.uniform(0.2, 1))
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    period = rng.uniform(size / 16, size / 6)
    kind = rng.integers(3)
    if kind == 0:
        t = (np.floor(u / period) % 2).astype(np.float32)
    elif kind == 1:
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    else:
        du = (u % period) / period - 0.5
        dv = (v % period) / period - 0.5
        t = (du**2 + dv**2 < 0.09).astype(np.float32)
    return first * (1 - t[..., None]) + second * t[..., None]


def texture(polygons, rng, size, class_index, num_classes):
    """The object filled with a pattern, outlined, on a background of another pattern."""
    del class_index, num_classes
    background = _pattern(rng, size)
    mask = _mask(polygons, size)
    image = _composite(background, _pattern(rng, size), mask)
    # A thin dark contour: without it the object's edge is only where one random
    # pattern meets another, which a small network on 600 images cannot learn.
    image = _composite(image, np.full_like(image, 20.0), _contour(mask) * 0.7)
    return _to_uint8(image + rng.normal(0, 5, image.shape))


DOMAINS = {"photo": photo, "sketch": sketch, "painting": painting, "texture": texture}
