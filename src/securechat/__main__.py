"""`python -m securechat [server|tui|cli] ...`: one entry point for the three commands.

With no command word it opens the terminal client, the program most people want.
"""

import sys

from securechat import __version__

COMMANDS = ("server", "tui", "cli")


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(
            "usage: python -m securechat [server|tui|cli] [arguments...]\n\n"
            "  server  the relay (securechat-server)\n"
            "  tui     the terminal client (securechat-tui), the default\n"
            "  cli     the scriptable client (securechat-cli)\n\n"
            "`python -m securechat COMMAND --help` describes each one."
        )
        return 0
    if argv[:1] == ["--version"]:
        print(f"securechat {__version__}")
        return 0
    command, rest = (argv[0], argv[1:]) if argv[:1] and argv[0] in COMMANDS else ("tui", argv)
    if command == "server":
        from securechat.server.cli import main as server_main

        return server_main(rest)
    if command == "cli":
        from securechat.client.cli import main as cli_main

        return cli_main(rest)
    from securechat.tui.cli import main as tui_main

    return tui_main(rest)


sys.exit(main(sys.argv[1:]))
