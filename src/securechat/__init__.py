"""securechat: an end-to-end encrypted chat whose relay only ever sees ciphertext."""

__version__ = "0.1.0"
