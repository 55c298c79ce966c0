"""``face-tracker`` command line: one module per subcommand (see :mod:`.main`)."""
