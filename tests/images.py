"""Images the tests build, in one place: a PIL image's encoded bytes, flat and noisy pictures,
and real photos (scikit-image ships them)."""

import io

import numpy as np
from PIL import Image


def encode(image, fmt="JPEG", **options):
    """`image` saved as `fmt`; options set to None are left to Pillow's defaults."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **{k: v for k, v in options.items() if v is not None})
    return buffer.getvalue()


def jpeg(image, quality=90, exif=None):
    return encode(image, "JPEG", quality=quality, exif=exif)


def flat(size, colour, fmt="JPEG"):
    """One colour, `size` pixels, at Pillow's default quality."""
    return encode(Image.new("RGB", size, colour), fmt)


def noise(size=(96, 64), seed=0):
    """Uniform RGB noise: a picture no codec shrinks."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def noisy_gradient_jpeg(size=(320, 240), seed=0):
    """A gradient with Gaussian noise, like a photo's smooth regions and sensor noise."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
    return jpeg(Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)))


def photo(name):
    """A real photo from scikit-image (astronaut, camera, chelsea, ...)."""
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)())
