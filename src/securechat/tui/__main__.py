"""`python -m securechat.tui`: `securechat-tui` where the script is not on PATH."""

import sys

from securechat.tui.cli import main

sys.exit(main())
