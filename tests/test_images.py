#!/usr/bin/env python3
# needs: numpy PIL
"""Images as files: PNG and JPEG read by neurite (libpng, libjpeg-turbo) against Pillow's decoder, grey and colour
conversion, resizing, MNIST-style inversion and centring (real digits drawn off-centre on white paper, then
predicted), a folder of PNG digits (one sub-folder per class) trained and predicted, and damaged files refused
in one line. Usage: test_images.py BUILD_DIR
"""
import os
import subprocess
import sys
import struct
import tempfile
import zlib

import numpy as np
from PIL import Image

from checks import Checks

CHECKS = Checks("images")
check = CHECKS.check
run = CHECKS.run


def load(helper, path, h, w, c, invert=0, center=0):
    """neurite's values for an image, or None (and the message) if it refused it."""
    out = subprocess.run([helper, path, str(h), str(w), str(c), str(invert), str(center)], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        return None, out.stderr.strip()
    return np.array([float(v) for v in out.stdout.split()]).reshape(h, w, c), ""


def decoders(helper, tmp):
    """Same size and channels: every pixel as Pillow decodes it (Pillow also decodes JPEG with libjpeg-turbo's
    default DCT and upsampling): 8-bit grey and colour PNG, a palette PNG, baseline and progressive JPEG."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    for kind, mode, arr, extra in (("png", "RGB", rgb, {}), ("png", "L", rgb[:, :, 0], {}),
                                   ("png", "P", rgb[:, :, 2] // 16, {}),
                                   ("jpg", "RGB", rgb, {"quality": 95}), ("jpg", "L", rgb[:, :, 1], {"quality": 95}),
                                   ("jpeg", "RGB", rgb, {"quality": 80, "progressive": True, "subsampling": 2})):
        path = os.path.join(tmp, "noise-%s.%s" % (mode, kind))
        img = Image.fromarray(arr, "L" if mode == "P" else mode)
        if mode == "P":
            img = img.convert("P")
            img.putpalette([v for i in range(256) for v in (i * 16 % 256, 255 - i * 16 % 256, i)])
        img.save(path, **extra)
        c = 1 if mode == "L" else 3
        mode = "RGB" if mode == "P" else mode
        ours, err = load(helper, path, 23, 31, c)
        ref = np.asarray(Image.open(path).convert(mode), dtype=float).reshape(23, 31, c)
        if ours is None:
            check(False, "%s %s refused: %s" % (kind, mode, err))
            continue
        diff = np.abs(ours - ref)
        check(diff.max() == 0, "%s %s: differs from Pillow by up to %g" % (kind, mode, diff.max()))
    # Colour to grey: Pillow's luminance (integer rounding) to within 1.
    path = os.path.join(tmp, "colour.png")
    Image.fromarray(rgb, "RGB").save(path)
    ours, _ = load(helper, path, 23, 31, 1)
    ref = np.asarray(Image.open(path).convert("L"), dtype=float).reshape(23, 31, 1)
    check(ours is not None and np.abs(ours - ref).max() <= 1.0, "grey from colour differs from Pillow's")
    # Grey to colour: three equal channels.
    ours, _ = load(helper, os.path.join(tmp, "noise-L.png"), 23, 31, 3)
    check(ours is not None and np.array_equal(ours[:, :, 0], ours[:, :, 2]), "colour from grey copies the grey")
    # Transparency over white paper.
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :, 3] = 0
    rgba[0, 0] = (0, 0, 0, 255)
    path = os.path.join(tmp, "alpha.png")
    Image.fromarray(rgba, "RGBA").save(path)
    ours, _ = load(helper, path, 4, 4, 1)
    check(ours is not None and ours[0, 0, 0] == 0 and ours[1, 1, 0] == 255, "transparent pixels become white")
    # 16-bit grey: the top byte, rounded, as Pillow makes 8 bits of it.
    deep = (rng.integers(0, 65536, (9, 7))).astype(np.uint16)
    path = os.path.join(tmp, "deep.png")
    Image.fromarray(deep.astype(np.int32), "I").convert("I;16").save(path)
    ours, err = load(helper, path, 9, 7, 1)
    check(ours is not None and np.abs(ours[:, :, 0] - np.round(deep / 257.0)).max() <= 1,
          "16-bit grey PNG: %s" % (err or "differs from value / 257"))


def resizing(helper, tmp):
    """Shrinking averages the pixels each covers; growing is bilinear and keeps a constant image constant."""
    base = np.random.default_rng(1).integers(0, 256, (14, 14), dtype=np.uint8)
    big = np.kron(base, np.ones((3, 3), dtype=np.uint8))
    path = os.path.join(tmp, "blocks.png")
    Image.fromarray(big, "L").save(path)
    ours, _ = load(helper, path, 14, 14, 1)
    check(ours is not None and np.abs(ours[:, :, 0] - base).max() < 1e-3, "3x3 blocks shrink to their values")
    flat = os.path.join(tmp, "flat.png")
    Image.fromarray(np.full((5, 7), 77, np.uint8), "L").save(flat)
    ours, _ = load(helper, flat, 28, 28, 1)
    check(ours is not None and np.abs(ours - 77).max() < 1e-3, "a constant image grows constant")


def read_idx(path):
    data = open(path, "rb").read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data[4 + 4 * dims:], np.uint8).reshape(shape)


def drawn_digits(exe, helper, tmp, digits_dir):
    """Real test digits drawn 4x larger, dark on white, off-centre: --invert auto and --center make them MNIST's
    again, and the digits model reads them."""
    images = read_idx(os.path.join(digits_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(os.path.join(digits_dir, "t10k-labels-idx1-ubyte"))
    model = os.path.join(tmp, "digits.nrm")
    run(exe, "train", "--data", "mnist", "--epochs", "5", "--quiet", "--out", model)
    rng = np.random.default_rng(2)
    right = total = 0
    for i in range(3, 2000, 50):
        canvas = np.full((170, 150), 255, np.uint8)
        y, x = rng.integers(0, 55), rng.integers(0, 35)
        canvas[y:y + 112, x:x + 112] = 255 - np.kron(images[i], np.ones((4, 4), np.uint8))
        path = os.path.join(tmp, "drawn%d.%s" % (i, "jpg" if i % 2 else "png"))
        Image.fromarray(np.stack([canvas] * 3, axis=2), "RGB").save(path)
        out = run(exe, "predict", model, path, "--center")
        total += 1
        right += " class %d " % labels[i] in out
    print("images: %d of %d digits drawn on paper read right with --invert auto --center" % (right, total))
    check(right >= 0.9 * total, "only %d of %d drawn digits read right" % (right, total))


def folder(exe, tmp, digits_dir):
    """A folder of PNG digits, one sub-folder per class named in words: trained, evaluated, predicted."""
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for split, stem, step in (("train", "train", 3), ("test", "t10k", 2)):
        images = read_idx(os.path.join(digits_dir, stem + "-images-idx3-ubyte"))
        labels = read_idx(os.path.join(digits_dir, stem + "-labels-idx1-ubyte"))
        for i in range(0, len(images), step):
            d = os.path.join(tmp, "folder", split, names[labels[i]])
            os.makedirs(d, exist_ok=True)
            Image.fromarray(images[i], "L").save(os.path.join(d, "%05d.png" % i))
    open(os.path.join(tmp, "folder", "train", "seven", "notes.txt"), "w").write("not an image\n")
    model = os.path.join(tmp, "folder.nrm")
    out = run(exe, "train", "--data", os.path.join(tmp, "folder", "train"), "--test",
              os.path.join(tmp, "folder", "test"), "--epochs", "10", "--quiet", "--out", model)
    acc = float(out.split("test: accuracy ")[1].split(",")[0]) if "test: accuracy " in out else 0.0
    count = int(out.split("samples of")[0].split()[-1]) if "samples of" in out else 0
    print("images: a folder of %d PNG digits in 10 named sub-folders: test accuracy %.4f" % (count, acc))
    check(acc > 0.9, "folder of PNG digits: test accuracy %.4f" % acc)
    check("classes: eight five four nine one seven six three two zero" in run(exe, "info", model),
          "the folder's sub-folders name the classes")
    sevens = os.path.join(tmp, "folder", "test", "seven")
    pred = run(exe, "predict", model, *[os.path.join(sevens, f) for f in sorted(os.listdir(sevens))[:20]])
    check(pred.count(" class seven ") >= 18, "predicting sevens by name: %s" % pred[:300])


def refusals(exe, helper, tmp):
    good = os.path.join(tmp, "noise-RGB.png")
    data = open(good, "rb").read()
    cut = os.path.join(tmp, "cut.png")
    open(cut, "wb").write(data[:len(data) // 2])
    text = os.path.join(tmp, "text.png")
    open(text, "w").write("this is not an image\n")
    # A 1x1 grey PNG whose pixel data inflates to 64 MB: read as its one black pixel (libpng inflates only what
    # the image needs; stb_image, used before, grew a buffer for all of it).
    bomb = os.path.join(tmp, "bomb.png")
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    with open(bomb, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(bytes(64 << 20), 9)) + chunk(b"IEND", b""))
    jpeg = open(os.path.join(tmp, "noise-RGB.jpg"), "rb").read()
    cut_jpeg = os.path.join(tmp, "cut.jpg")
    open(cut_jpeg, "wb").write(jpeg[:len(jpeg) * 2 // 3])
    ours, err = load(helper, bomb, 1, 1, 1)
    check(ours is not None and ours.max() == 0, "bomb.png: %s" % (err or "not black"))
    for path, want in ((cut, "cut.png: a damaged PNG"), (cut_jpeg, "cut.jpg: a damaged JPEG"), (text, "text.png: not an image neurite can read"),
                                              (os.path.join(tmp, "missing.png"), "missing.png: cannot open")):
        ours, err = load(helper, path, 28, 28, 1)
        check(ours is None and want in err and "\n" not in err, "%s: %s" % (os.path.basename(path), err))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    exe, helper = os.path.join(build, "neurite"), os.path.join(build, "tests", "helper_image")
    version = subprocess.run([exe, "version"], capture_output=True, text=True, check=False).stdout
    if "libpng, libjpeg-turbo" not in version:
        print("images: skipped: this neurite was built without libpng or libjpeg-turbo "
              "(apt-get install libpng-dev libturbojpeg0-dev)")
        return CHECKS.report()
    digits = os.environ.get("NEURITE_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "neurite")
    digits = os.path.join(digits, "mnist")
    with tempfile.TemporaryDirectory() as tmp:
        decoders(helper, tmp)
        resizing(helper, tmp)
        refusals(exe, helper, tmp)
        if os.path.exists(os.path.join(digits, "t10k-images-idx3-ubyte")):
            drawn_digits(exe, helper, tmp, digits)
            folder(exe, tmp, digits)
        else:
            print("images: note: the MNIST digits are not fetched (neurite fetch mnist); digit checks skipped")
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
