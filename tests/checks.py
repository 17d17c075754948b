"""checks.py - counted checks for the Python tests, the counterpart of check.h and lib.sh: each failure is one
line on stderr, and report() prints the "NAME: N passed, M failed" line that tests/run.sh adds up."""
import subprocess
import sys


class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s: %s" % (self.name, what), file=sys.stderr)

    def run(self, *args, **kw):
        """Runs a command, checks that it exits 0, and returns its standard output."""
        out = subprocess.run(args, capture_output=True, text=True, check=False, **kw)
        self.check(out.returncode == 0,
                   "%s exited %d: %s" % (" ".join(args[:3]), out.returncode, out.stderr.strip()[:500]))
        return out.stdout

    def report(self):
        """Prints the summary line; the exit status for sys.exit."""
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        return 1 if self.failed else 0
