#!/usr/bin/env python3
# needs: PIL
"""The training report: `neurite train --report` and `neurite report` write one self-contained HTML file
(nothing fetched: no URL but inline data) that headless Chromium loads without a console error, and whose
screenshot is the size asked for and not blank; the sections a classifier and a regression need are there.
Says "skipped" where Chromium is missing (CI installs it). Usage: test_report.py BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

from checks import Checks

CHECKS = Checks("report")
check = CHECKS.check
run = CHECKS.run

WIDTH, HEIGHT = 1200, 1800


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def render(browser, tmp, page, name):
    """Loads the page headless: its console messages, and a screenshot's size and spread of colours."""
    shot = os.path.join(tmp, name + ".png")
    # The flags of a machine without a network: no background connections, no GPU, no first-run dialogs.
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--user-data-dir=" + os.path.join(tmp, "profile-" + name), "--enable-logging=stderr",
                          "--v=0", "--window-size=%d,%d" % (WIDTH, HEIGHT), "--screenshot=" + shot,
                          "file://" + page], capture_output=True, text=True, timeout=120, check=False)
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    if not os.path.exists(shot):
        return console, None, 0
    img = Image.open(shot).convert("L")
    colours = len(set(img.getdata()))
    return console, img.size, colours


def self_contained(path):
    text = open(path, encoding="utf-8").read()
    urls = re.findall(r'(?:href|src)="(?!data:)([^"]+)"', text)
    return text, urls


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    exe = os.path.join(build, "neurite")
    browser = chromium()
    if not browser:
        print("report: skipped: no chromium (apt-get install chromium)")
        return CHECKS.report()
    with tempfile.TemporaryDirectory() as tmp:
        table = os.path.join(tmp, "t.csv")
        with open(table, "w") as f:
            f.write("a,b,colour,kind\n")
            for i in range(300):
                f.write("%d,%d,%s,%s\n" % (i % 7, (i * 3) % 11, ("red", "green", "blue")[i % 3],
                                           ("cat", "dog", "owl")[(i + i % 7) % 3]))
        page = os.path.join(tmp, "classes.html")
        out = run(exe, "train", "--data", table, "--test", table, "--label", "kind", "--epochs", "30", "--quiet",
                  "--report", page)
        check("report: " + page in out, "train --report did not say where it wrote")
        text, urls = self_contained(page)
        check(not urls, "the report refers to files or the network: %s" % urls[:3])
        for section in ("Training", "accuracy", "precision", "predicted class", "The model", "--label=kind"):
            check(section in text, "the classifier's report lacks '%s'" % section)
        console, size, colours = render(browser, tmp, page, "classes")
        check(not console, "console messages: %s" % console[:3])
        check(size == (WIDTH, HEIGHT), "screenshot size %s, asked for %dx%d" % (size, WIDTH, HEIGHT))
        check(colours > 20, "the screenshot is blank (%d shades)" % colours)
        print("report: a classifier's report: %d bytes, screenshot %s with %d shades, %d console messages" %
              (len(text), size, colours, len(console)))

        numbers = os.path.join(tmp, "r.csv")
        with open(numbers, "w") as f:
            f.write("x,y,z\n")
            for i in range(400):
                f.write("%d,%d,%g\n" % (i % 13, i % 5, (i % 13) * 0.5 - (i % 5)))
        model, page = os.path.join(tmp, "r.nrm"), os.path.join(tmp, "regression.html")
        log = os.path.join(tmp, "r.log")
        run(exe, "train", "--data", numbers, "--task", "regress", "--label", "z", "--epochs", "20", "--quiet",
            "--out", model, "--log", log)
        run(exe, "report", model, "--data", numbers, "--label", "z", "--log", log, "--out", page)
        text, urls = self_contained(page)
        check(not urls and "predicted (up) against true" in text and "residual" in text and "MAE" in text,
              "the regression's report lacks its plots or table")
        console, size, colours = render(browser, tmp, page, "regression")
        check(not console and size == (WIDTH, HEIGHT) and colours > 20,
              "regression report: console %s, size %s, %d shades" % (console[:2], size, colours))
        code = subprocess.run([exe, "report", model, "--out", os.path.join(tmp, "gone", "x.html")],
                              capture_output=True, text=True, check=False)
        check(code.returncode == 2 and "the folder" in code.stderr and code.stderr.count("\n") == 1,
              "an unwritable report: %s" % code.stderr)
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
