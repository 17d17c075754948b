#!/usr/bin/env python3
# needs: numpy sklearn
"""Tables as people have them: scikit-learn's iris, wine and breast-cancer tables with their classes named by
text, text feature columns (one-hot, their values kept in the model), missing values (refused, dropped,
filled), and regression against scikit-learn's MLPRegressor on the same split (diabetes, and a
California-housing-sized synthetic table). Usage: test_tables.py BUILD_DIR
"""
import csv
import os
import random
import subprocess
import sys
import tempfile
import warnings

import numpy as np

from checks import Checks

CHECKS = Checks("tables")
check = CHECKS.check
run = CHECKS.run


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def split(rows, seed=0, share=0.8):
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    k = int(len(rows) * share)
    return rows[:k], rows[k:]


def fails(exe, *args):
    """The command's exit status and its stderr, which must be one line."""
    out = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    return out.returncode, out.stderr.strip()


def value(text, key):
    """The number after `key` in text."""
    for line in text.splitlines():
        if key in line:
            return float(line.split(key)[1].split(",")[0].split()[0])
    return float("nan")


def named_classes(exe, tmp):
    from sklearn import datasets
    for name, loader, label in (("iris", datasets.load_iris, "species"), ("wine", datasets.load_wine, "class"),
                                ("breast-cancer", datasets.load_breast_cancer, "class")):
        d = loader()
        header = [f.replace(" ", "_") for f in d.feature_names] + [label]
        rows = [[repr(float(v)) for v in x] + [str(d.target_names[y])] for x, y in zip(d.data, d.target)]
        train, test = split(rows)
        a, b = os.path.join(tmp, name + "-train.csv"), os.path.join(tmp, name + "-test.csv")
        write_csv(a, header, train)
        write_csv(b, header, test)
        model = os.path.join(tmp, name + ".nrm")
        out = run(exe, "train", "--data", a, "--test", b, "--label", label, "--quiet", "--out", model)
        acc = value(out, "test: accuracy")
        print("tables: %s (classes %s): test accuracy %.4f on %d samples" %
              (name, " ".join(map(str, d.target_names)), acc, len(test)))
        check(acc >= 0.95, "%s: test accuracy %.4f is below 0.95" % (name, acc))
        info = run(exe, "info", model)
        check("classes: " + " ".join(sorted(map(str, d.target_names))) in info, "%s: info lacks the class names" % name)
        pred = run(exe, "predict", model, b, "--label", label)
        names = [line.split(" class ")[1].split()[0] for line in pred.splitlines() if " class " in line]
        truth = [r[-1] for r in test]
        same = sum(p == t for p, t in zip(names, truth)) / len(truth)
        check(len(names) == len(test) and abs(same - acc) < 1e-4,
              "%s: predict's named classes give %.4f, train said %.4f" % (name, same, acc))
        ev = run(exe, "eval", model, "--data", b, "--label", label)
        check(str(d.target_names[0]) in ev and abs(value(ev, "accuracy:") - acc) < 1e-4,
              "%s: eval does not show the named classes or the accuracy" % name)


def text_columns(exe, tmp):
    """A class that only a text column tells: learnt through its one-hot inputs, kept in the model."""
    rng = random.Random(1)
    colours = ["blue", "green", "red", "violet"]
    rows = []
    for _ in range(600):
        c = rng.choice(colours)
        rows.append([round(rng.gauss(0, 1), 3), c, "round" if c in ("blue", "red") else "square"])
    header = ["noise", "colour", "shape"]
    train, test = split(rows)
    a, b = os.path.join(tmp, "shapes-train.csv"), os.path.join(tmp, "shapes-test.csv")
    write_csv(a, header, train)
    write_csv(b, header, test)
    model = os.path.join(tmp, "shapes.nrm")
    out = run(exe, "train", "--data", a, "--test", b, "--label", "shape", "--quiet", "--out", model)
    check(value(out, "test: accuracy") == 1.0, "a text column that decides the class: %s" % out[-200:])
    info = run(exe, "info", model)
    check("colour (blue green red violet)" in info and "noise (number)" in info,
          "info does not describe the input columns: %s" % info)
    unseen = os.path.join(tmp, "unseen.csv")
    write_csv(unseen, ["noise", "colour"], [[0.5, "red"], [0.1, "orange"]])
    code, err = fails(exe, "predict", model, unseen)
    check(code == 1 and err.count("\n") == 0 and "line 3, column 2: 'orange' is a value the model never saw" in err,
          "an unseen text value: %d %s" % (code, err))
    renamed = os.path.join(tmp, "renamed.csv")
    write_csv(renamed, ["noise", "hue"], [[0.5, "red"]])
    code, err = fails(exe, "predict", model, renamed)
    check(code == 1 and "column 2 is 'hue', the model's is 'colour'" in err, "a renamed column: %s" % err)


def missing_values(exe, tmp):
    path = os.path.join(tmp, "gaps.csv")
    rows = [[i % 7, (i * 3) % 5 if i % 10 else "NA", "" if i % 13 == 0 else i % 2, i % 2] for i in range(1, 301)]
    write_csv(path, ["a", "b", "c", "y"], rows)
    code, err = fails(exe, "train", "--data", path, "--quiet")
    check(code == 1 and "line 11, column 2: missing value" in err and "--missing drop or mean" in err,
          "a missing value is refused with its line and column: %s" % err)
    out = run(exe, "train", "--data", path, "--missing", "drop", "--quiet", "--epochs", "2")
    kept = sum(1 for r in rows if r[1] != "NA" and r[2] != "")
    check(("data: %s: %d samples" % (path, kept)) in out, "--missing drop keeps %d rows: %s" % (kept, out[:200]))
    model = os.path.join(tmp, "gaps.nrm")
    out = run(exe, "train", "--data", path, "--missing", "mean", "--quiet", "--out", model)
    check(("data: %s: 300 samples" % path) in out, "--missing mean keeps every row: %s" % out[:200])
    x = os.path.join(tmp, "gaps-x.csv")
    write_csv(x, ["a", "b", "c"], [[1, "NA", 1], [2, "?", ""]])
    pred = run(exe, "predict", model, x)
    check(pred.count(" class ") == 2, "a model trained with --missing mean fills missing inputs: %s" % pred)
    check("missing values filled with the training mean" in run(exe, "info", model), "info says the rule")


def mae(pred, truth):
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(truth))))


def sklearn_mae(train, test, hidden, activation):
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler
    x, y = np.array([r[:-1] for r in train], float), np.array([r[-1] for r in train], float)
    xt, yt = np.array([r[:-1] for r in test], float), np.array([r[-1] for r in test], float)
    scale = StandardScaler().fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MLPRegressor(hidden_layer_sizes=hidden, activation=activation, early_stopping=True, max_iter=2000,
                         random_state=0)
        m.fit(scale.transform(x), y)
    return mae(m.predict(scale.transform(xt)), yt)


def regression(exe, tmp, name, header, rows, hidden, activation, options):
    """neurite against MLPRegressor of the same hidden layers and activation (stopping early), on the same split.
    neurite's options are its recipe for the table: early stopping, or a cosine schedule run to its end."""
    train, test = split(rows)
    a, b = os.path.join(tmp, name + "-train.csv"), os.path.join(tmp, name + "-test.csv")
    write_csv(a, header, train)
    write_csv(b, header, test)
    model = os.path.join(tmp, name + ".nrm")
    layers = "-".join(map(str, hidden)) + "-1"
    out = run(exe, "train", "--data", a, "--test", b, "--task", "regress", "--label", header[-1], "--layers", layers,
              "--act", activation, *options, "--quiet", "--out", model)
    ours, r2 = value(out, "MAE"), value(out, "R^2")
    theirs = sklearn_mae(train, test, hidden, activation)
    print("tables: %s: MAE %.4g (R^2 %.3f) against MLPRegressor(%s, %s)'s %.4g, on %d test rows" %
          (name, ours, r2, layers, activation, theirs, len(test)))
    check(ours <= theirs, "%s: MAE %.4g is worse than MLPRegressor's %.4g" % (name, ours, theirs))
    pred = run(exe, "predict", model, b, "--label", header[-1], "--csv").splitlines()
    values = [float(line.split(",")[2]) for line in pred[1:]]
    check(abs(mae(values, [r[-1] for r in test]) - ours) < 1e-3 * ours, "%s: predict's values give another MAE" % name)
    ev = run(exe, "eval", model, "--data", b, "--label", header[-1])
    check(abs(value(ev, header[-1]) - ours) < 1e-3 * ours and "R^2" in ev, "%s: eval's MAE differs: %s" % (name, ev))


def regressions(exe, tmp):
    from sklearn import datasets
    d = datasets.load_diabetes()
    rows = [[float(v) for v in x] + [float(y)] for x, y in zip(d.data, d.target)]
    regression(exe, tmp, "diabetes", list(d.feature_names) + ["progression"], rows, (16,), "relu",
               ("--patience", "20"))
    # The size of California housing (20 640 rows, 8 features; the real table needs a download): a smooth
    # function of the features with noise.
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (20640, 8))
    y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4] +
         2 * x[:, 5] * x[:, 6] + rng.normal(0, 1, 20640))
    rows = [[round(float(v), 5) for v in xi] + [round(float(yi), 5)] for xi, yi in zip(x, y)]
    regression(exe, tmp, "housing-size", ["f%d" % i for i in range(8)] + ["value"], rows, (64, 64), "tanh",
               ("--epochs", "100"))
    # Two targets at once.
    path = os.path.join(tmp, "two.csv")
    write_csv(path, ["a", "b", "sum", "diff"], [[i % 9, i % 4, i % 9 + i % 4, i % 9 - i % 4] for i in range(400)])
    model = os.path.join(tmp, "two.nrm")
    out = run(exe, "train", "--data", path, "--test", path, "--task", "regress", "--label", "sum,diff", "--quiet",
              "--out", model)
    check("test: sum: MAE" in out and "test: diff: MAE" in out and value(out, "R^2") > 0.99,
          "two targets: %s" % out[-300:])
    check("targets: sum, diff" in run(exe, "info", model), "info names the targets")


def main():
    exe = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "neurite")
    with tempfile.TemporaryDirectory() as tmp:
        named_classes(exe, tmp)
        text_columns(exe, tmp)
        missing_values(exe, tmp)
        regressions(exe, tmp)
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
