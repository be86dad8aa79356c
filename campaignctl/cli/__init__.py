"""The command line: typer apps that parse, call one library function, and print."""
