"""Wire protocol v1: frames, codec, limits and error codes. Pure: no I/O."""
