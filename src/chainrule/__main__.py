"""The ``chainrule`` command line: one subcommand per tool.

Each tool module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning an exit code. A tool whose arguments argparse
would misread may also expose ``prepare_argv(argv)``, which rewrites its own arguments first.
Tools are imported lazily so that ``chainrule expr`` does not pay for importing the training stack.
"""

import argparse
import importlib
import sys

TOOLS = {
    "train": "chainrule.train",
    "demo": "chainrule.demo",
    "expr": "chainrule.expr.cli",
    "run": "chainrule.distributed.run",
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="chainrule", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    parsed_argv = argv
    for name, module_name in TOOLS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a tool whose optional dependency is missing still lists
            sub = subparsers.add_parser(name, help=f"(unavailable: {exc})")
            sub.set_defaults(func=lambda args, exc=exc: _unavailable(exc))
            continue
        module.register(subparsers)
        if argv[:1] == [name] and hasattr(module, "prepare_argv"):
            parsed_argv = [name, *module.prepare_argv(argv[1:])]
    args = parser.parse_args(parsed_argv)
    args.argv = argv  # what a tool that relaunches itself passes on
    return args.func(args)


def _unavailable(exc):
    print(f"chainrule: this command needs an optional dependency: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
