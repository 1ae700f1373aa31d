"""The command line: one thin module per verb that parses, calls a library package, and renders."""
