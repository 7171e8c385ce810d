"""Entry point of `python -m benchmarks`: prepare benchmarks/.venv, then run the suite in it."""

from __future__ import annotations

import sys

from benchmarks import bootstrap, cli


def main() -> int:
    """Print help or the list without any setup; otherwise bootstrap, then run."""
    argv = sys.argv[1:]
    if not {"-h", "--help", "--list"} & set(argv):
        bootstrap.prepare_and_reexec(argv, with_nginx=cli.runs_nginx(argv),
                                     with_h2load=cli.runs_h2(argv))
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
