"""``search compare STUDY_A STUDY_B``: two studies' Pareto fronts side by side, as text.

Per study: front size, hypervolume (one reference for both), the best Dice, the fastest and the
knee; then which front members of each study dominate members of the other.
"""

from search.commands.options import add_storage_option


def register(subparsers):
    parser = subparsers.add_parser("compare", help="compare the Pareto fronts of two studies", description=__doc__)
    parser.add_argument("study_a", metavar="STUDY_A", help="a study name (see 'search studies')")
    parser.add_argument("study_b", metavar="STUDY_B", help="another study in the same storage")
    add_storage_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=run)


def run(args) -> int:
    import json

    from studies.compare import compare_studies, format_comparison
    from studies.storage import load_study

    if args.study_a == args.study_b:
        raise ValueError(f"compare: both studies are {args.study_a!r}; name two different studies (see 'search studies')")
    comparison = compare_studies(load_study(args.storage, args.study_a), load_study(args.storage, args.study_b))
    print(json.dumps(comparison.to_dict(), indent=2) if args.json else format_comparison(comparison))
    return 0
