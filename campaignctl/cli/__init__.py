"""The command line: typer apps that parse, call one library function, and print.

Each command imports the library it calls inside its body, for start-up time: `campaignctl
--help` loads 129 modules (~90 ms), and the library the commands call would add some 480
more (~850 ms) to every command line (`python benchmarks/imports.py`). Nothing below cli/
does this to dodge a cycle: tests/test_layers.py lists the three lazy imports it keeps.
"""
