"""The command line: the parser and every subcommand. Library errors (ValueError) become one line and exit 2.
Nothing imports this package but `toyviz.__main__` and `toyviz.image.__main__`."""
