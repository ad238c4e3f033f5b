"""The contract scripts' one way to report: `ok`/`FAIL` per check, failures kept for the exit code."""

fails = []


def check(ok, what):
    print("%s  %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        fails.append(what)
    return ok
