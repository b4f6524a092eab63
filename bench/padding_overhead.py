"""`python -m bench.padding_overhead`: bytes that envelope padding adds, over a chat-like mix.

Not a timing: a count of bytes, deterministic (fixed seed). The mix is each
text followed by its receipt, text lengths log-normal (median 34 characters,
95th percentile about 176), and one file offer (with its receipt) per 50
texts. Format 1 is the unpadded `msg` envelope; format 2 the bare, padded
ratchet message. Figures are envelope bodies before base64.
"""

from __future__ import annotations

import random
import statistics

from securechat.client import payloads as P
from securechat.crypto.filestream import seal_file
from securechat.crypto.ratchet import MESSAGE_OVERHEAD

SENT_AT = 1.7e9
EID = "A" * 22


def _format_1(content: P.Inner) -> int:
    message = bytes(MESSAGE_OVERHEAD + len(P.encode(content)))
    return len(P.encode(P.RatchetEnvelope(message=message)))


def _format_2(content: P.Inner) -> int:
    return len(P.encode_inner(content, SENT_AT, 1)) + MESSAGE_OVERHEAD


def main(count: int = 10_000) -> None:
    rng = random.Random(1)
    lengths = [max(1, min(4000, int(rng.lognormvariate(3.55, 1.0)))) for _ in range(count)]
    manifest = seal_file(b"x", "holiday-photo.jpg", "image/jpeg")[0].to_bytes()
    receipt = P.Receipt(eids=[EID])
    old = new = envelopes = 0
    for i, length in enumerate(lengths):
        old += _format_1(P.Text(text="x" * length, ts=SENT_AT)) + _format_1(receipt)
        new += _format_2(P.Text(text="x" * length)) + _format_2(receipt)
        envelopes += 2
        if i % 50 == 0:
            old += _format_1(P.FileOffer(manifest=manifest, blob_id="B" * 32, ts=SENT_AT))
            new += _format_2(P.FileOffer(manifest=manifest, blob_id="B" * 32))
            old += _format_1(receipt)
            new += _format_2(receipt)
            envelopes += 2
    print(f"texts: median {statistics.median(lengths):.0f} characters, {envelopes} envelopes")
    print(f"format 1 (unpadded): {old / envelopes:.1f} bytes per envelope")
    print(f"format 2 (padded):   {new / envelopes:.1f} bytes per envelope")
    print(f"overhead: {(new - old) / envelopes:.1f} bytes per envelope ({new / old - 1:.0%})")


if __name__ == "__main__":
    main()
