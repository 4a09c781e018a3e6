"""One module per command; each registers itself on the CLI app through `cli.command`."""
