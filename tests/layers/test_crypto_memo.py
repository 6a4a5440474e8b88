"""The blind index's per-import memo (``BlindIndex.remembered``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading

from layers.crypto import BlindIndex, FieldCipher


def test_remembered_digests_equal_the_hmac_and_are_computed_once_then_forgotten():
    key = FieldCipher.generate_key()
    index = BlindIndex(key)
    calls = []
    plain = index.digest

    def counting(number):
        calls.append(number)
        return plain(number)

    index.digest = counting  # counts the instance's own digests as they are computed
    numbers = ["11010519491231002x", None, "11010519491231002x", "110105194912310037"]
    raw = base64.urlsafe_b64decode(key)
    expected = [None if n is None else hmac.new(raw, n.upper().encode(), hashlib.sha256).hexdigest() for n in numbers]
    with index.remembered():
        assert index.digests(numbers) == expected
        assert index.digests(numbers[:1]) == expected[:1]
        assert calls == ["11010519491231002x", "110105194912310037"]  # each number once
        other = threading.Thread(target=index.digests, args=(numbers[:1],))
        other.start()
        other.join()
        assert len(calls) == 3  # another thread does not share this block's memo
    calls.clear()
    assert index.digests(numbers[:1]) == expected[:1]
    assert calls == ["11010519491231002x"]  # after the block nothing is kept
