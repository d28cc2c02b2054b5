"""The command line, on top of every layer: one parser, the commands of each group."""
