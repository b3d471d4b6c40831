"""Reference for the forbid engine-test pack: run(x) returns x doubled, without forbidden APIs."""


def run(x):
    return 2 * x
