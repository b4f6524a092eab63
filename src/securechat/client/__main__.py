"""`python -m securechat.client`: `securechat-cli` where the script is not on PATH."""

import sys

from securechat.client.cli import main

sys.exit(main())
