"""`securechat-cli daemon`: one unlocked, connected client serving JSON-RPC 2.0 to scripts."""
