"""`python -m securechat.server`: `securechat-server` where the script is not on PATH."""

import sys

from securechat.server.cli import main

sys.exit(main())
