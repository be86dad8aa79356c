"""The command line: typer apps that parse, call one library function, and print.

Each command imports the library it calls inside its body, for start-up time: the library
the commands call would add some 480 modules (~850 ms) to every command line (`python
benchmarks/imports.py`). The root (`cli/main.py`) builds only the command a command line
runs, and `--help` none. Nothing below cli/ does this to dodge a cycle: tests/test_layers.py
lists the three lazy imports it keeps.
"""
