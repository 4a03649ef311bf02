"""``search space``: print the search space (narrowed by the same options as ``search start``)."""

from search.commands.options import add_space_options, space_from


def register(subparsers):
    parser = subparsers.add_parser("space", help="print the search space", description=__doc__)
    add_space_options(parser)
    parser.set_defaults(run=run)


def run(args):
    space = space_from(vars(args))
    rows = space.describe()
    width = max(len(name) for name, _ in rows)
    for name, choices in rows:
        print(f"{name:<{width}}  {choices}")
