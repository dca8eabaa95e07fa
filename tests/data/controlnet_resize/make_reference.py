"""Writes controlnet_resize_reference.json: sd-webui-controlnet's control-map resize (detectmap_proc with its
high_quality_resize, nake_nms, lvmin_thin) and canny preprocessor (resize_image_with_pad at 512, cv2.Canny), run by
the real OpenCV and numpy on small seeded inputs, plus the plain cv2.resize calls they make.

Run with the system Python and Debian's packages (OpenCV 4.6.0 built without IPP, so its 8-bit INTER_CUBIC is
OpenCV's own code, numpy 1.24):  apt-get install -y python3-opencv python3-numpy; /usr/bin/python3 make_reference.py
Deterministic (seeded numpy). The functions below are copied verbatim from Mikubill/sd-webui-controlnet @ 56cec5b2
(scripts/controlnet.py Script.detectmap_proc, scripts/lvminthin.py, scripts/utils.py get_unique_axis0,
annotator/util.py HWC3, scripts/preprocessor/legacy/processor.py pad64/safer_memory/resize_image_with_pad/canny);
only get_pytorch_control is replaced (it makes the torch tensor, /255 of the same uint8 map)."""
import base64
import json
import zlib
from enum import Enum

import cv2
import numpy as np


# ---- scripts/enums.py -------------------------------------------------------------------------------------------
class ResizeMode(Enum):
    RESIZE = "Just Resize"
    INNER_FIT = "Crop and Resize"
    OUTER_FIT = "Resize and Fill"


# ---- annotator/util.py --------------------------------------------------------------------------------------------
def HWC3(x):
    assert x.dtype == np.uint8
    if x.ndim == 2:
        x = x[:, :, None]
    assert x.ndim == 3
    H, W, C = x.shape
    assert C == 1 or C == 3 or C == 4
    if C == 3:
        return x
    if C == 1:
        return np.concatenate([x, x, x], axis=2)
    if C == 4:
        color = x[:, :, 0:3].astype(np.float32)
        alpha = x[:, :, 3:4].astype(np.float32) / 255.0
        y = color * alpha + 255.0 * (1.0 - alpha)
        y = y.clip(0, 255).astype(np.uint8)
        return y


# ---- scripts/utils.py ---------------------------------------------------------------------------------------------
def get_unique_axis0(data):
    arr = np.asanyarray(data)
    idxs = np.lexsort(arr.T)
    arr = arr[idxs]
    unique_idxs = np.empty(len(arr), dtype=np.bool_)
    unique_idxs[:1] = True
    unique_idxs[1:] = np.any(arr[:-1, :] != arr[1:, :], axis=-1)
    return arr[unique_idxs]


# ---- scripts/lvminthin.py -----------------------------------------------------------------------------------------
lvmin_kernels_raw = [
    np.array([
        [-1, -1, -1],
        [0, 1, 0],
        [1, 1, 1]
    ], dtype=np.int32),
    np.array([
        [0, -1, -1],
        [1, 1, -1],
        [0, 1, 0]
    ], dtype=np.int32)
]

lvmin_kernels = []
lvmin_kernels += [np.rot90(x, k=0, axes=(0, 1)) for x in lvmin_kernels_raw]
lvmin_kernels += [np.rot90(x, k=1, axes=(0, 1)) for x in lvmin_kernels_raw]
lvmin_kernels += [np.rot90(x, k=2, axes=(0, 1)) for x in lvmin_kernels_raw]
lvmin_kernels += [np.rot90(x, k=3, axes=(0, 1)) for x in lvmin_kernels_raw]

lvmin_prunings_raw = [
    np.array([
        [-1, -1, -1],
        [-1, 1, -1],
        [0, 0, -1]
    ], dtype=np.int32),
    np.array([
        [-1, -1, -1],
        [-1, 1, -1],
        [-1, 0, 0]
    ], dtype=np.int32)
]

lvmin_prunings = []
lvmin_prunings += [np.rot90(x, k=0, axes=(0, 1)) for x in lvmin_prunings_raw]
lvmin_prunings += [np.rot90(x, k=1, axes=(0, 1)) for x in lvmin_prunings_raw]
lvmin_prunings += [np.rot90(x, k=2, axes=(0, 1)) for x in lvmin_prunings_raw]
lvmin_prunings += [np.rot90(x, k=3, axes=(0, 1)) for x in lvmin_prunings_raw]


def remove_pattern(x, kernel):
    objects = cv2.morphologyEx(x, cv2.MORPH_HITMISS, kernel)
    objects = np.where(objects > 127)
    x[objects] = 0
    return x, objects[0].shape[0] > 0


def thin_one_time(x, kernels):
    y = x
    is_done = True
    for k in kernels:
        y, has_update = remove_pattern(y, k)
        if has_update:
            is_done = False
    return y, is_done


def lvmin_thin(x, prunings=True):
    y = x
    for i in range(32):
        y, is_done = thin_one_time(y, lvmin_kernels)
        if is_done:
            break
    if prunings:
        y, _ = thin_one_time(y, lvmin_prunings)
    return y


def nake_nms(x):
    f1 = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=np.uint8)
    f2 = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=np.uint8)
    f3 = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.uint8)
    f4 = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.uint8)
    y = np.zeros_like(x)
    for f in [f1, f2, f3, f4]:
        np.putmask(y, cv2.dilate(x, kernel=f) == x, x)
    return y


# ---- scripts/controlnet.py ----------------------------------------------------------------------------------------
def get_pytorch_control(x):
    return None  # the extension's torch tensor (x.float() / 255, HWC -> 1CHW); the tests compare the uint8 map


def detectmap_proc(detected_map, module, resize_mode, h, w):

    if 'inpaint' in module:
        detected_map = detected_map.astype(np.float32)
    else:
        detected_map = HWC3(detected_map)

    def safe_numpy(x):
        # A very safe method to make sure that Apple/Mac works
        y = x

        # below is very boring but do not change these. If you change these Apple or Mac may fail.
        y = y.copy()
        y = np.ascontiguousarray(y)
        y = y.copy()
        return y

    def high_quality_resize(x, size):
        # Written by lvmin
        # Super high-quality control map up-scaling, considering binary, seg, and one-pixel edges

        inpaint_mask = None
        if x.ndim == 3 and x.shape[2] == 4:
            inpaint_mask = x[:, :, 3]
            x = x[:, :, 0:3]

        if x.shape[0] != size[1] or x.shape[1] != size[0]:
            new_size_is_smaller = (size[0] * size[1]) < (x.shape[0] * x.shape[1])
            new_size_is_bigger = (size[0] * size[1]) > (x.shape[0] * x.shape[1])
            unique_color_count = len(get_unique_axis0(x.reshape(-1, x.shape[2])))
            is_one_pixel_edge = False
            is_binary = False
            if unique_color_count == 2:
                is_binary = np.min(x) < 16 and np.max(x) > 240
                if is_binary:
                    xc = x
                    xc = cv2.erode(xc, np.ones(shape=(3, 3), dtype=np.uint8), iterations=1)
                    xc = cv2.dilate(xc, np.ones(shape=(3, 3), dtype=np.uint8), iterations=1)
                    one_pixel_edge_count = np.where(xc < x)[0].shape[0]
                    all_edge_count = np.where(x > 127)[0].shape[0]
                    is_one_pixel_edge = one_pixel_edge_count * 2 > all_edge_count

            if 2 < unique_color_count < 200:
                interpolation = cv2.INTER_NEAREST
            elif new_size_is_smaller:
                interpolation = cv2.INTER_AREA
            else:
                interpolation = cv2.INTER_CUBIC  # Must be CUBIC because we now use nms. NEVER CHANGE THIS

            y = cv2.resize(x, size, interpolation=interpolation)
            if inpaint_mask is not None:
                inpaint_mask = cv2.resize(inpaint_mask, size, interpolation=interpolation)

            if is_binary:
                y = np.mean(y.astype(np.float32), axis=2).clip(0, 255).astype(np.uint8)
                if is_one_pixel_edge:
                    y = nake_nms(y)
                    _, y = cv2.threshold(y, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
                    y = lvmin_thin(y, prunings=new_size_is_bigger)
                else:
                    _, y = cv2.threshold(y, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
                y = np.stack([y] * 3, axis=2)
        else:
            y = x

        if inpaint_mask is not None:
            inpaint_mask = (inpaint_mask > 127).astype(np.float32) * 255.0
            inpaint_mask = inpaint_mask[:, :, None].clip(0, 255).astype(np.uint8)
            y = np.concatenate([y, inpaint_mask], axis=2)

        return y

    if resize_mode == ResizeMode.RESIZE:
        detected_map = high_quality_resize(detected_map, (w, h))
        detected_map = safe_numpy(detected_map)
        return get_pytorch_control(detected_map), detected_map

    old_h, old_w, _ = detected_map.shape
    old_w = float(old_w)
    old_h = float(old_h)
    k0 = float(h) / old_h
    k1 = float(w) / old_w

    safeint = lambda x: int(np.round(x))

    if resize_mode == ResizeMode.OUTER_FIT:
        k = min(k0, k1)
        borders = np.concatenate([detected_map[0, :, :], detected_map[-1, :, :], detected_map[:, 0, :], detected_map[:, -1, :]], axis=0)
        high_quality_border_color = np.median(borders, axis=0).astype(detected_map.dtype)
        if len(high_quality_border_color) == 4:
            # Inpaint hijack
            high_quality_border_color[3] = 255
        high_quality_background = np.tile(high_quality_border_color[None, None], [h, w, 1])
        detected_map = high_quality_resize(detected_map, (safeint(old_w * k), safeint(old_h * k)))
        new_h, new_w, _ = detected_map.shape
        pad_h = max(0, (h - new_h) // 2)
        pad_w = max(0, (w - new_w) // 2)
        high_quality_background[pad_h:pad_h + new_h, pad_w:pad_w + new_w] = detected_map
        detected_map = high_quality_background
        detected_map = safe_numpy(detected_map)
        return get_pytorch_control(detected_map), detected_map
    else:
        k = max(k0, k1)
        detected_map = high_quality_resize(detected_map, (safeint(old_w * k), safeint(old_h * k)))
        new_h, new_w, _ = detected_map.shape
        pad_h = max(0, (new_h - h) // 2)
        pad_w = max(0, (new_w - w) // 2)
        detected_map = detected_map[pad_h:pad_h+h, pad_w:pad_w+w]
        detected_map = safe_numpy(detected_map)
        return get_pytorch_control(detected_map), detected_map


# ---- scripts/preprocessor/legacy/processor.py ---------------------------------------------------------------------
def pad64(x):
    return int(np.ceil(float(x) / 64.0) * 64 - x)


def safer_memory(x):
    # Fix many MAC/AMD problems
    return np.ascontiguousarray(x.copy()).copy()


def resize_image_with_pad(input_image, resolution, skip_hwc3=False):
    if skip_hwc3:
        img = input_image
    else:
        img = HWC3(input_image)
    H_raw, W_raw, _ = img.shape
    k = float(resolution) / float(min(H_raw, W_raw))
    interpolation = cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA
    H_target = int(np.round(float(H_raw) * k))
    W_target = int(np.round(float(W_raw) * k))
    img = cv2.resize(img, (W_target, H_target), interpolation=interpolation)
    H_pad, W_pad = pad64(H_target), pad64(W_target)
    img_padded = np.pad(img, [[0, H_pad], [0, W_pad], [0, 0]], mode='edge')

    def remove_pad(x):
        return safer_memory(x[:H_target, :W_target])

    return safer_memory(img_padded), remove_pad


def canny(img, res=512, thr_a=100, thr_b=200, **kwargs):
    img, remove_pad = resize_image_with_pad(img, res)
    result = cv2.Canny(img, thr_a, thr_b)
    return remove_pad(result), True


# ---- inputs (seeded) ----------------------------------------------------------------------------------------------
rng = np.random.default_rng(20250611)


def photo(w, h, noise=24):
    """Photo-like RGB: smooth gradients and a soft blob plus noise (hundreds of colours)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    blob = 90 * np.exp(-(((x - 0.6 * w) / (0.25 * w)) ** 2 + ((y - 0.4 * h) / (0.3 * h)) ** 2))
    base = np.stack([x * 220 / max(w - 1, 1) + blob, y * 220 / max(h - 1, 1), 200 - (x + y) * 150 / max(w + h - 2, 1) + blob], -1)
    return np.clip(base + rng.integers(-noise, noise + 1, (h, w, 3)), 0, 255).astype(np.uint8)


def segmentation(w, h, colours=6):
    """A segmentation-like map: a few flat regions (ADE20K-like palette colours)."""
    palette = np.array([[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3], [120, 120, 80],
                        [140, 140, 140], [204, 5, 255]], dtype=np.uint8)[:colours]
    y, x = np.mgrid[0:h, 0:w]
    label = ((x * 3 // w) + 2 * (y * 2 // h) + ((x - w // 2) ** 2 + (y - h // 2) ** 2 < (min(w, h) // 4) ** 2) * 3) % colours
    return palette[label]


def shapes(w, h, seed_shapes=5):
    """Flat-colour drawing (for edge maps): a background, rectangles, circles and lines."""
    img = np.full((h, w, 3), (200, 190, 170), np.uint8)
    for _ in range(seed_shapes):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            x0, y0 = int(rng.integers(0, w - 4)), int(rng.integers(0, h - 4))
            cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(4, w // 2)), y0 + int(rng.integers(4, h // 2))), colour, -1)
        elif kind == 1:
            cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(3, min(w, h) // 3)), colour, -1)
        else:
            cv2.line(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), (int(rng.integers(0, w)), int(rng.integers(0, h))), colour, 2)
    return img


def thin_edges(w, h):
    """A canny edge map (one-pixel edges, 0/255), three channels, as the canny preprocessor gives it."""
    return HWC3(cv2.Canny(shapes(w, h, 7), 100, 200))


def thick_binary(w, h):
    """A binary map with thick strokes (not one-pixel edges): 0/255."""
    img = np.zeros((h, w), np.uint8)
    cv2.circle(img, (w // 3, h // 2), min(w, h) // 4, 255, -1)
    cv2.rectangle(img, (w // 2, h // 5), (w - 4, h // 2), 255, -1)
    cv2.line(img, (2, h - 3), (w - 3, 3), 255, 4)
    return HWC3(img)


arrays = {}


def put(name, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    arrays[name] = {"shape": list(a.shape), "zlib_base64": base64.b64encode(zlib.compress(a.tobytes(), 9)).decode("ascii")}
    return name


def colours(a):
    return len(get_unique_axis0(a.reshape(-1, a.shape[2])))


# ---- cv2.resize cases (the calls high_quality_resize and resize_image_with_pad make) ---------------------------
interp = {"nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}
resize_cases = []
photo_small = put("photo_23x17", photo(23, 17))
photo_mid = put("photo_64x48", photo(64, 48))
photo_odd = put("photo_37x29", photo(37, 29))
seg = put("seg_40x30", segmentation(40, 30))
for name, src, (w, h), mode in [
    ("cubic up 23x17 to 50x41", photo_small, (50, 41), "cubic"),
    ("cubic up 23x17 to 64x64 (one axis x2.78, other x3.76)", photo_small, (64, 64), "cubic"),
    ("cubic mixed 64x48 to 80x40 (up x, down y)", photo_mid, (80, 40), "cubic"),
    ("cubic down 64x48 to 29x22", photo_mid, (29, 22), "cubic"),
    ("area 2x2 64x48 to 32x24", photo_mid, (32, 24), "area"),
    ("area 4x3 64x48 to 16x16", photo_mid, (16, 16), "area"),
    ("area 2x1 64x48 to 32x48", photo_mid, (32, 48), "area"),
    ("area non-integer 64x48 to 27x20", photo_mid, (27, 20), "area"),
    ("area non-integer 37x29 to 15x11", photo_odd, (15, 11), "area"),
    ("area non-integer 37x29 to 36x28", photo_odd, (36, 28), "area"),
    ("area mixed 64x48 to 80x20 (up x, down y)", photo_mid, (80, 20), "area"),
    ("area mixed 37x29 to 20x45 (down x, up y)", photo_odd, (20, 45), "area"),
    ("nearest up 40x30 to 97x71", seg, (97, 71), "nearest"),
    ("nearest down 40x30 to 17x13", seg, (17, 13), "nearest"),
]:
    x = np.frombuffer(zlib.decompress(base64.b64decode(arrays[src]["zlib_base64"])), np.uint8).reshape(arrays[src]["shape"])
    expected = cv2.resize(x, (w, h), interpolation=interp[mode])
    resize_cases.append({"name": name, "input": src, "width": w, "height": h, "interpolation": mode,
                         "expected": put("resize_" + str(len(resize_cases)), expected)})


def load(name):
    return np.frombuffer(zlib.decompress(base64.b64decode(arrays[name]["zlib_base64"])), np.uint8).reshape(arrays[name]["shape"]).copy()


# ---- detectmap_proc cases ------------------------------------------------------------------------------------------
edges_48 = put("edges_48x36", thin_edges(48, 36))
edges_96 = put("edges_96x72", thin_edges(96, 72))
thick = put("thick_48x36", thick_binary(48, 36))
photo_wide = put("photo_48x32", photo(48, 32))
photo_tall = put("photo_32x48", photo(32, 48))
seg_wide = put("seg_48x30", segmentation(48, 30, 5))
tiny = put("tiny_13x4", segmentation(13, 4, 8))
two_grey = np.where(load("thick_48x36") > 0, 200, 50).astype(np.uint8)
two_grey = put("two_grey_48x36", two_grey)
photo_big_borders = photo(40, 24)
photo_big_borders[0, :, :] = rng.integers(0, 256, (40, 3))  # non-flat borders: the per-channel median is an average of two
photo_big_borders = put("photo_borders_40x24", photo_big_borders)

detect_cases = []
for name, src, mode, w, h in [
    ("photo cubic up, just resize", photo_small, ResizeMode.RESIZE, 56, 40),
    ("photo area down, just resize", photo_mid, ResizeMode.RESIZE, 40, 32),
    ("photo area mixed axes, just resize", photo_mid, ResizeMode.RESIZE, 80, 24),
    ("photo crop and resize, crops the width", photo_wide, ResizeMode.INNER_FIT, 40, 40),
    ("photo crop and resize, crops the height", photo_tall, ResizeMode.INNER_FIT, 40, 40),
    ("photo crop and resize down", photo_mid, ResizeMode.INNER_FIT, 24, 24),
    ("photo resize and fill, bands top and bottom", photo_big_borders, ResizeMode.OUTER_FIT, 48, 48),
    ("photo resize and fill, bands left and right", photo_tall, ResizeMode.OUTER_FIT, 64, 48),
    ("segmentation nearest up, crop and resize", seg_wide, ResizeMode.INNER_FIT, 64, 64),
    ("segmentation nearest down, resize and fill", seg_wide, ResizeMode.OUTER_FIT, 24, 24),
    ("segmentation nearest, just resize", seg, ResizeMode.RESIZE, 56, 48),
    ("tiny map, half-even rounding of the crop size", tiny, ResizeMode.INNER_FIT, 8, 10),
    ("one-pixel edges up x2 (nms, Otsu, thinning, prunings)", edges_48, ResizeMode.RESIZE, 96, 72),
    ("one-pixel edges up, crop and resize", edges_48, ResizeMode.INNER_FIT, 64, 64),
    ("one-pixel edges down (no prunings)", edges_96, ResizeMode.RESIZE, 40, 32),
    ("one-pixel edges down, resize and fill", edges_96, ResizeMode.OUTER_FIT, 48, 48),
    ("thick binary up (Otsu only)", thick, ResizeMode.RESIZE, 80, 64),
    ("thick binary down (Otsu only), crop", thick, ResizeMode.INNER_FIT, 24, 24),
    ("two colours that are not binary, up", two_grey, ResizeMode.RESIZE, 64, 56),
    ("same size, every mode is the identity", photo_mid, ResizeMode.OUTER_FIT, 64, 48),
]:
    x = load(src)
    _, y = detectmap_proc(x.copy(), "none", mode, h, w)
    detect_cases.append({"name": name, "input": src, "colours": colours(x), "mode": mode.value, "width": w, "height": h,
                         "expected": put("detect_" + str(len(detect_cases)), y)})

# The binary path's steps on their own (nake_nms, Otsu, lvmin_thin), from the mean of a cubic upscale of an edge map.
binary_steps = []
for src, (w, h) in [(edges_48, (96, 72)), (edges_96, (40, 32))]:
    x = load(src)
    resized = cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC if w * h > x.shape[0] * x.shape[1] else cv2.INTER_AREA)
    mean = np.mean(resized.astype(np.float32), axis=2).clip(0, 255).astype(np.uint8)
    nms = nake_nms(mean)
    otsu_value, otsu = cv2.threshold(nms, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thinned = lvmin_thin(otsu.copy(), prunings=w * h > x.shape[0] * x.shape[1])
    binary_steps.append({"source": src, "width": w, "height": h, "prunings": bool(w * h > x.shape[0] * x.shape[1]),
                         "mean": put(f"steps_{len(binary_steps)}_mean", mean[:, :, None]),
                         "nms": put(f"steps_{len(binary_steps)}_nms", nms[:, :, None]),
                         "otsu_threshold": int(otsu_value),
                         "otsu": put(f"steps_{len(binary_steps)}_otsu", otsu[:, :, None]),
                         "thinned": put(f"steps_{len(binary_steps)}_thinned", thinned[:, :, None])})

# ---- canny preprocessor (resize_image_with_pad at 512, cv2.Canny 100/200 on the padded RGB image, pad removed) ----
canny_cases = []
def photo_with_box(w, h):
    img = photo(w, h, 10)
    cv2.rectangle(img, (w // 4, h // 3), (w * 2 // 3, h - 5), (20, 30, 220), -1)
    return img


for name, img in [("small drawing upscaled (cubic) to 512", shapes(52, 40, 6)),
                  ("photo with a box upscaled (cubic) to 512", photo_with_box(45, 38)),
                  ("large drawing downscaled (area) to 512", shapes(640, 560, 9))]:
    src = put("canny_input_" + str(len(canny_cases)), img)
    result, _ = canny(img.copy(), 512, 100, 200)
    canny_cases.append({"name": name, "input": src, "resolution": 512, "low": 100, "high": 200,
                        "expected": put("canny_" + str(len(canny_cases)), result[:, :, None])})

# Cubic cases whose rows hit exact halves: OpenCV computes most of each row in float (SIMD, round half to even) and
# the rest in fixed point (round half up), and these differ there. Posterized noise makes such halves common.
halves = np.random.default_rng(7)
for name, (w, h), (dw, dh), levels in [("cubic posterized 24x9 to 24x29 (exact halves)", (24, 9), (24, 29), 64),
                                       ("cubic posterized 8x26 to 56x28 (exact halves)", (8, 26), (56, 28), 64),
                                       ("cubic posterized 6x25 to 66x42 (exact halves)", (6, 25), (66, 42), 64),
                                       ("cubic noise 29x10 to 29x5", (29, 10), (29, 5), 1)]:
    x = (halves.integers(0, 256, (h, w, 3)) // levels * levels).astype(np.uint8)
    src = put(f"halves_{w}x{h}", x)
    resize_cases.append({"name": name, "input": src, "width": dw, "height": dh, "interpolation": "cubic",
                         "expected": put("resize_" + str(len(resize_cases)), cv2.resize(x, (dw, dh), interpolation=cv2.INTER_CUBIC))})
# The same in the fixed-point tail of the rows (the last width·3 mod 8 values): a thin, tall upscale (seed 8 of a search
# for one; the draws below repeat the search's).
tail = np.random.default_rng(8)
w, h, dw, dh = int(tail.integers(4, 20)), int(tail.integers(4, 20)), int(tail.choice([3, 5, 7, 9, 13])), int(tail.integers(20, 60))
x = (tail.integers(0, 256, (h, w, 3)) // 64 * 64).astype(np.uint8)
resize_cases.append({"name": f"cubic posterized {w}x{h} to {dw}x{dh} (exact halves in the fixed-point tail)", "input": put(f"halves_{w}x{h}", x),
                     "width": dw, "height": dh, "interpolation": "cubic",
                     "expected": put("resize_" + str(len(resize_cases)), cv2.resize(x, (dw, dh), interpolation=cv2.INTER_CUBIC))})

# The morphology on its own, on non-binary inputs too: erode/dilate (3x3 ones on three channels, a line kernel on
# one), hit-or-miss with a thinning and a pruning kernel, and Otsu, on seeded noise.
morph = np.random.default_rng(11)
grey = morph.integers(0, 256, (17, 23, 1)).astype(np.uint8)
sparse = (morph.integers(0, 5, (17, 23, 1)) == 0).astype(np.uint8) * 255
rgb = morph.integers(0, 256, (13, 11, 3)).astype(np.uint8)
put("morph_grey", grey)
put("morph_sparse", sparse)
put("morph_rgb", rgb)
ones = np.ones((3, 3), np.uint8)
line = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.uint8)
morph_cases = [
    {"op": "erode", "input": "morph_rgb", "kernel": ones.tolist(), "expected": put("morph_0", cv2.erode(rgb, ones))},
    {"op": "dilate", "input": "morph_rgb", "kernel": ones.tolist(), "expected": put("morph_1", cv2.dilate(rgb, ones))},
    {"op": "dilate", "input": "morph_grey", "kernel": line.tolist(), "expected": put("morph_2", cv2.dilate(grey[:, :, 0], line)[:, :, None])},
]
for source, image in [("morph_grey", grey), ("morph_sparse", sparse)]:
    for kernel in (lvmin_kernels[3], lvmin_prunings[6]):
        result = cv2.morphologyEx(image[:, :, 0].copy(), cv2.MORPH_HITMISS, kernel)
        morph_cases.append({"op": "hitmiss", "input": source, "kernel": kernel.tolist(),
                            "expected": put("morph_" + str(len(morph_cases)), result[:, :, None])})
otsu_cases = [{"input": name, "threshold": int(cv2.threshold(a[:, :, 0].copy(), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0])}
              for name, a in [("morph_grey", grey), ("steps_0_mean", load("steps_0_mean"))]]

out = {
    "about": "made by make_reference.py (see README.md); arrays are uint8, row-major HWC, zlib-compressed, base64",
    "opencv": cv2.__version__,
    "numpy": np.__version__,
    "extension_commit": "56cec5b2",
    "resize": resize_cases,
    "detectmap": detect_cases,
    "binary_steps": binary_steps,
    "canny": canny_cases,
    "morphology": morph_cases,
    "otsu": otsu_cases,
    "arrays": arrays,
}
with open("controlnet_resize_reference.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print({k: len(v) for k, v in out.items() if isinstance(v, list)}, "arrays", len(arrays))
