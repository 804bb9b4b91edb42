"""`python -m hdgen_cli` runs the `hdgen` command line (also how torchrun starts it)."""

from hdgen_cli.cli.app import main

if __name__ == "__main__":
    main()
