"""One module per subcommand; see :mod:`search.cli`."""
