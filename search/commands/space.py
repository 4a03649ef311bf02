"""``search space``: print the search space (narrowed by the same options as ``search start``)."""

from search.options import SPACE_OPTIONS, add_options, space_of


def register(subparsers):
    parser = subparsers.add_parser("space", help="print the search space", description=__doc__)
    add_options(parser, SPACE_OPTIONS)
    parser.set_defaults(run=run)


def run(args):
    space = space_of(vars(args))
    rows = space.describe()
    width = max(len(name) for name, _ in rows)
    for name, choices in rows:
        print(f"{name:<{width}}  {choices}")
