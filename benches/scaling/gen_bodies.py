#!/usr/bin/env python3
"""Writes the GraphQL JSON response bodies of benches/scaling.sh into DIR:
body-2k.json (the peer benchmark's response.json), body-200k.json, body-5m.json and
body-100m.json: {"data":{"items":[{...}, ...],"pageInfo":{...}}} with realistic nested
objects (strings, numbers, booleans, null, arrays, a nested object per item), so slogate's
streaming classifier scans real structure, not one long string.
    gen_bodies.py DIR PEER_RESPONSE_JSON [SIZES...]   (sizes: 200k 5m 100m)
"""
import json
import os
import sys

ITEM = ('{"id":"I%07d","title":"Lesson %d: ownership and borrowing in practice","minutes":%d,'
        '"position":%d,"kind":"VIDEO","completed":%s,"preview":false,"rating":4.%d,'
        '"tags":["rust","rails","graphql"],"instructor":{"id":"U%d","name":"Ada Lovelace",'
        '"avatarUrl":"https://cdn.example.com/avatars/u%d-64.png"},"completedAt":null}')
SIZES = {"200k": 200 * 1024, "5m": 5 * 1024 * 1024, "100m": 100 * 1024 * 1024}


def body(target):
    head, tail = '{"data":{"items":[', '],"pageInfo":{"hasNextPage":false,"endCursor":null}}}'
    parts, size, i = [], len(head) + len(tail), 0
    while True:
        item = ITEM % (i, i, 5 + i % 20, i, "true" if i % 3 else "false", i % 10, i % 97, i % 97)
        if size + len(item) + 1 > target:
            break
        parts.append(item)
        size += len(item) + 1
        i += 1
    return head + ",".join(parts) + tail


def main():
    out, peer = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3:] or list(SIZES)
    os.makedirs(out, exist_ok=True)
    with open(peer, "rb") as src, open(os.path.join(out, "body-2k.json"), "wb") as dst:
        dst.write(src.read().strip())
    for name in wanted:
        text = body(SIZES[name])
        if SIZES[name] <= 5 * 1024 * 1024:
            json.loads(text)  # cheap proof it is valid JSON (the 100 MB one is built the same way)
        with open(os.path.join(out, "body-%s.json" % name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
