"""The `hdgen` command line: a thin layer over hdgen_cli.api (parse, call, print)."""
