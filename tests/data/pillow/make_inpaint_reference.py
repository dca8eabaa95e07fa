"""Writes inpaint_reference.json: Pillow's own results for the image operations A1111's inpainting uses
(masked-content "fill", Gaussian blur, alpha composite, resize_image modes 1 and 2). Run with the system Python
and Debian's python3-pil (Pillow 9.4.0): /usr/bin/python3 make_inpaint_reference.py. Deterministic (seeded numpy)."""
import json

import numpy as np
from PIL import Image, ImageFilter, ImageOps

rng = np.random.default_rng(20241204)


def smooth_rgb(w, h):
    # Gradients plus noise, so blurs and resizes see structure and not only noise.
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(w + h - 2, 1)], -1)
    return np.clip(base + rng.integers(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)


def flat(a):
    return np.asarray(a, dtype=np.uint8).reshape(-1).tolist()


def lanczos_resize_mode(mode, im, width, height):
    # A1111 images.resize_image, modes 1 (crop and resize) and 2 (resize and fill), no upscaler: Pillow Lanczos.
    lanczos = Image.LANCZOS
    ratio, src_ratio = width / height, im.width / im.height
    if mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
    else:
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=lanczos)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if mode == 2 and ratio < src_ratio:
        fill_height = height // 2 - src_h // 2
        if fill_height > 0:
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0), resample=lanczos), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height), resample=lanczos),
                      box=(0, fill_height + src_h))
    elif mode == 2 and ratio > src_ratio:
        fill_width = width // 2 - src_w // 2
        if fill_width > 0:
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height), resample=lanczos), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height), resample=lanczos),
                      box=(fill_width + src_w, 0))
    return res


def masked_content_fill(image, mask):
    # A1111 masking.fill: premultiplied image with the mask cut out, blurred at decreasing radii, composited.
    canvas = Image.new('RGBA', image.size)
    cut = Image.new('RGBa', image.size)
    cut.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert('L')))
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        layer = cut.filter(ImageFilter.GaussianBlur(radius)).convert('RGBA')
        for _ in range(repeats):
            canvas.alpha_composite(layer)
    return canvas.convert("RGB")


cases = {"pillow": Image.__version__}

# Gaussian blur of an RGBa image (all four bytes blurred alike).
rgba = rng.integers(0, 256, (9, 13, 4)).astype(np.uint8)
cases["blur"] = {"width": 13, "height": 9, "channels": 4, "input": flat(rgba), "outputs": {}}
for radius in [0, 1.5, 2, 4, 16, 64, 256]:
    out = Image.frombytes("RGBa", (13, 9), rgba.tobytes()).filter(ImageFilter.GaussianBlur(radius))
    cases["blur"]["outputs"][str(radius)] = flat(np.frombuffer(out.tobytes(), np.uint8))

# Alpha composite of two arbitrary RGBA images (transparent and opaque pixels included).
dst = rng.integers(0, 256, (6, 7, 4)).astype(np.uint8)
src = rng.integers(0, 256, (6, 7, 4)).astype(np.uint8)
dst[0, :, 3] = 0; dst[1, :, 3] = 255; src[2, :, 3] = 0; src[3, :, 3] = 255
composite = Image.frombytes("RGBA", (7, 6), dst.tobytes())
composite.alpha_composite(Image.frombytes("RGBA", (7, 6), src.tobytes()))
cases["alpha_composite"] = {"width": 7, "height": 6, "destination": flat(dst), "source": flat(src), "output": flat(np.asarray(composite))}

# Masked-content fill: a hole with soft edges in a 24x20 image.
image = smooth_rgb(24, 20)
mask = np.zeros((20, 24), np.uint8)
mask[5:14, 7:19] = 255
mask = np.asarray(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(1.5)))
filled = masked_content_fill(Image.fromarray(image), Image.fromarray(mask))
cases["fill"] = {"width": 24, "height": 20, "image": flat(image), "mask": flat(mask), "output": flat(np.asarray(filled))}

# resize_image modes 1 and 2: RGB images both ways of the aspect ratio, and an L mask (A1111's RGB canvas, channel 0).
cases["resize"] = []
for mode, (w, h), (tw, th), channels in [(2, (20, 12), (16, 16), 3), (2, (12, 20), (16, 16), 3), (2, (23, 17), (16, 16), 1),
                                          (2, (9, 9), (16, 12), 3), (1, (16, 16), (10, 7), 3), (1, (16, 12), (13, 13), 3)]:
    src_img = smooth_rgb(w, h)
    pil = Image.fromarray(src_img) if channels == 3 else Image.fromarray(src_img[:, :, 0])
    out = np.asarray(lanczos_resize_mode(mode, pil, tw, th))
    if channels == 1:
        out = out[:, :, 0]
    cases["resize"].append({"mode": mode, "width": w, "height": h, "channels": channels, "new_width": tw, "new_height": th,
                            "input": flat(np.asarray(pil)), "output": flat(out)})

with open("inpaint_reference.json", "w") as f:
    json.dump(cases, f, separators=(",", ":"))
