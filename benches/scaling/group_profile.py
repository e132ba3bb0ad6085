#!/usr/bin/env python3
"""Groups a profile's self time (perf report --no-children --sort dso,symbol) or exclusive
instructions (callgrind_annotate --inclusive=no) by component, so "how much is slogate's own
code" has one number:
    group_profile.py perf SELF_TXT | group_profile.py callgrind EXCL_TXT
Components: kernel; glibc malloc/free; glibc memcpy/memmove/memset; other glibc; slogate (its
crates: slogate, slogate_core, slogate_proxy, slogate_metrics...); slogate's libraries used
only by it (serde_json, memchr, itoa, ryu, flate2/zstd...); pingora; tokio/mio; http/httparse/
bytes (header maps and parsing, used by both); Rust std/core/alloc; other. Inlined code is
charged to the function it was inlined into.
"""
import re
import sys

SLOGATE_LIBS = ("serde_json", "serde_core", "serde", "memchr", "itoa", "ryu", "flate2", "zstd",
                "miniz_oxide", "crc32fast", "sha2", "hex", "graphql_parser", "apollo_parser",
                "humantime", "time", "chrono", "lru", "quick_cache", "moka", "foldhash", "ahash")


def crate_of(sym):
    s = sym.strip()
    s = re.sub(r"^(<|&mut |&|\*const |\*mut |dyn )+", "", s)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    return m.group(1) if m else ""


def component(dso, sym):
    d = dso.lower()
    if "kernel" in d or sym.startswith("[k]") or d.startswith("[k"):
        return "kernel"
    name = sym
    if "libc" in d or (not d and re.match(r"^(_int_|malloc|free|cfree|__mem|memcpy|memmove|memset)", name)):
        if re.search(r"malloc|free|_int_|unlink_chunk|consolidate|realloc|calloc|tcache|arena|sysmalloc|systrim", name):
            return "glibc malloc/free"
        if re.search(r"mem(cpy|move|set|cmp|chr)|__memmove|__memset|__memcpy|strlen", name):
            return "glibc memcpy/memset"
        return "glibc other"
    if "vdso" in d:
        return "vdso (clock_gettime)"
    if "ld-linux" in d or "libm" in d or "libgcc" in d:
        return "other"
    c = crate_of(name)
    if c.startswith("slogate"):
        return "slogate's own code"
    if "SlogateProxy as" in name or "slogate_" in name[:80]:
        return "slogate's own code"
    if c in SLOGATE_LIBS:
        return "slogate's libraries (serde_json, memchr...)"
    if c.startswith("pingora"):
        return "pingora"
    if c in ("tokio", "mio"):
        return "tokio/mio"
    if c in ("http", "httparse", "bytes", "httpdate", "http_body"):
        return "http/httparse/bytes (header maps, parsing)"
    if c in ("core", "alloc", "std", "hashbrown", "parking_lot", "parking_lot_core", "crossbeam_channel",
             "crossbeam_utils", "once_cell", "arc_swap"):
        return "Rust std/core/alloc"
    if name.startswith("0x") or not c:
        return "unresolved / other"
    return "other (%s)" % c


def parse_perf(path):
    out = []
    for line in open(path):
        # "    14.75%  [kernel.kallsyms]  [k] _raw_spin_unlock_irqrestore"
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if m:
            pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
            sym = re.sub(r"(\s+-)+\s*$", "", sym).strip()
            out.append((pct, "kernel" if kind == "k" else dso, sym))
    return out


def parse_callgrind(path):
    out = []
    for line in open(path):
        # " 42,951,891 ( 9.43%)  crates/.../json.rs:slogate_core::json::JsonScanner::skip [/path/bin]"
        m = re.match(r"\s*[0-9,]+\s+\(\s*([0-9.]+)%\)\s+(.*)$", line)
        if not m:
            continue
        pct, rest = float(m.group(1)), m.group(2)
        obj = ""
        mo = re.search(r"\[([^\]]+)\]\s*$", rest)
        if mo:
            obj = mo.group(1)
            rest = rest[:mo.start()].strip()
        # file:function; the function may contain "::" but the file part ends at the first ':'
        # followed by a non-':' character after a path.
        mf = re.match(r"^(.*?\.(?:rs|c|S|h)|\?\?\?):(.*)$", rest)
        sym = mf.group(2) if mf else rest
        dso = "libc" if "libc" in obj else ("kernel" if "vmlinux" in obj else obj)
        out.append((pct, dso, sym))
    return out


def parse_callgrind_raw(paths):
    """Self instructions per function straight from callgrind.out files (callgrind_annotate
    3.19's exclusive list charges thread entry points with inlined async code)."""
    names = {"fn": {}, "ob": {}}
    self_cost, obj_of, total = {}, {}, 0
    for path in paths:
        fn, ob, after_call = "?", "", False
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if after_call:
                    after_call = False
                    continue
                if len(parts) > 1:
                    v = int(parts[1])
                    self_cost[fn] = self_cost.get(fn, 0) + v
                    obj_of.setdefault(fn, ob)
                    total += v
                continue
            key, _, rest = line.partition("=")
            if key in ("fn", "cfn", "ob", "cob"):
                space = "fn" if key in ("fn", "cfn") else "ob"
                m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
                if m:
                    if m.group(2) is not None:
                        names[space][m.group(1)] = m.group(2)
                    rest = names[space].get(m.group(1), rest)
                if key == "fn":
                    fn = rest
                elif key == "ob":
                    ob = rest
            elif key == "calls":
                after_call = True
    rows = []
    for f, v in self_cost.items():
        ob = obj_of.get(f, "")
        dso = "libc" if "libc" in ob else ("kernel" if "vmlinux" in ob else ob)
        rows.append((100.0 * v / total if total else 0, dso, f))
    rows.sort(reverse=True)
    return rows


def main():
    kind, args = sys.argv[1], sys.argv[2:]
    top = 0
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    if kind == "callgrind-raw":
        rows = parse_callgrind_raw(args)
    elif kind == "perf":
        rows = parse_perf(args[0])
    else:
        rows = parse_callgrind(args[0])
    if top:
        for pct, dso, sym in sorted(rows, reverse=True)[:top]:
            print("%6.2f%%  %-30s %s" % (pct, component(dso, sym)[:30], sym[:150]))
        return
    groups, tops = {}, {}
    for pct, dso, sym in rows:
        g = component(dso, sym)
        groups[g] = groups.get(g, 0) + pct
        tops.setdefault(g, []).append((pct, sym))
    total = sum(groups.values())
    unit = "of samples" if kind == "perf" else "of instructions"
    print("%8s  %s  (total listed: %.1f%% %s)" % ("share", "component: largest entries", total, unit))
    for g, v in sorted(groups.items(), key=lambda kv: -kv[1]):
        best = sorted(tops[g], reverse=True)[:3]
        print("%7.1f%%  %s: %s" % (v, g, "; ".join("%s %.1f%%" % (s[:90], p) for p, s in best)))


if __name__ == "__main__":
    main()
