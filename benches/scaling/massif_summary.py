#!/usr/bin/env python3
"""Summarises a massif detailed snapshot (valgrind --tool=massif; vgdb detailed_snapshot):
the heap by allocation site, each named by its first frames outside the allocator and the
standard library, with bytes per connection when N is given.
    massif_summary.py SNAPSHOT_FILE [N_CONNECTIONS] [MIN_PERCENT]
"""
import re
import sys

NOISE = re.compile(r"UnknownInlinedFun|^(alloc|core|std)::|library/(alloc|core|std)/|raw_vec|"
                   r"with_capacity|from_elem|__rust_|__rdl_|malloc|calloc|realloc|"
                   r"^\{closure|^\{async_fn|^map<|^call_once|^do_call|^catch_unwind|^poll_future|"
                   r"^poll_inner|^poll<|^with_mut|^set<|^try_with|^with<|^run<|^budget|^with_budget")


def parse(path):
    text = open(path).read().split("\n")
    # The last detailed snapshot.
    starts = [i for i, l in enumerate(text) if l.startswith("heap_tree=detailed")]
    if not starts:
        sys.exit("massif_summary.py: no detailed snapshot in " + path)
    nodes, stack = [], []
    for line in text[starts[-1] + 1:]:
        m = re.match(r"^( *)n(\d+): (\d+) (.*)$", line)
        if not m:
            if line.startswith("#-") or line.startswith("snapshot="):
                break
            continue
        depth, nkids, size, desc = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        node = {"size": size, "desc": desc, "kids": []}
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1]["kids"].append(node)
        else:
            nodes.append(node)
        stack.append((depth, node))
    return nodes[0]


def frame(desc):
    m = re.match(r"0x[0-9A-F]+: (.*)$", desc)
    return m.group(1) if m else desc


def chain(node, limit=4):
    out, n = [], node
    while True:
        f = frame(n["desc"])
        if not NOISE.search(f) and not f.startswith("in ") and (not out or out[-1] != f):
            out.append(re.sub(r"\s+\(.*\)$", "", f)[:110])
        if len(out) >= limit or len(n["kids"]) != 1:
            break
        n = n["kids"][0]
    return out


def leaves(node, min_bytes):
    """Allocation sites: descend through single-child chains, split where the tree branches."""
    res = []
    for k in node["kids"]:
        if k["size"] < min_bytes:
            continue
        res.append(k)
    return res


def main():
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    minpct = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    root = parse(path)
    total = root["size"]
    print("heap (useful bytes) in the snapshot: %s B%s" % (
        format(total, ","), " = %s B per connection" % format(total // n, ",") if n else ""))
    print("%12s %7s %12s  %s" % ("bytes", "share", "per conn", "allocated by (first frames outside alloc/std)"))
    for k in sorted(leaves(root, total * minpct / 100), key=lambda x: -x["size"]):
        per = format(k["size"] // n, ",") if n else "-"
        print("%12s %6.1f%% %12s  %s" % (format(k["size"], ","), 100.0 * k["size"] / total, per,
                                         " <- ".join(chain(k))))


if __name__ == "__main__":
    main()
