#!/usr/bin/env python3
"""Split an Nsight Compute SASS source page (ncu -i X.ncu-rep --page source --csv --print-source sass) of an attnc
warp-specialized kernel into regions and summarize each.

Regions: prologue (before USETMAXREG.TRY_ALLOC), consumers (TRY_ALLOC up to the producer's USETMAXREG.DEALLOC),
producer (DEALLOC up to the last EXIT). Instructions after the last EXIT (out-of-line mbarrier try_wait retry stubs,
called subroutines such as the slow paths of sqrtf/division) are given to the region whose code branches or calls
into them (followed transitively); anything reached from both is 'shared', anything unreached 'unreached'.

Column names are discovered from the header row (the row holding 'Address' and 'Source').

usage: python3 scripts/ncu-regions.py SASS.csv [--tiles T --cwarps 8 --pwarps 4] [--json out.json] [--hot 25]
"""
import argparse
import csv
import json
import re
import sys
from collections import Counter, defaultdict


def find_col(hdr, *preds, required=True):
    for i, h in enumerate(hdr):
        hl = h.lower()
        if all(p(hl) for p in preds):
            return i
    if required:
        raise SystemExit(f"no column matching in header: {hdr}")
    return None


def num(x):
    x = x.strip().replace(",", "")
    if x in ("", "-"):
        return 0.0
    try:
        return float(x)
    except ValueError:
        return 0.0


PRED = re.compile(r"^@!?U?P[T0-9]+\s+")
ADDR = re.compile(r"0x[0-9a-fA-F]+")


def opcode(src):
    s = PRED.sub("", src.strip())
    tok = s.split()[0] if s.split() else ""
    return tok, tok.split(".")[0]


def load(path):
    rows = list(csv.reader(open(path, newline="")))
    hi = next(i for i, r in enumerate(rows) if "Address" in r and "Source" in r)
    hdr = rows[hi]
    kernel = None
    for r in rows[:hi]:
        if r and r[0].strip().lower() == "kernel name" and len(r) > 1:
            kernel = r[1]
    c = {
        "addr": find_col(hdr, lambda h: h == "address"),
        "src": find_col(hdr, lambda h: h == "source"),
        "samp": find_col(hdr, lambda h: h.startswith("warp stall sampling"), lambda h: "all" in h),
        "nis": find_col(hdr, lambda h: h.startswith("warp stall sampling"), lambda h: "not-issued" in h or "not issued" in h),
        "exec": find_col(hdr, lambda h: h == "instructions executed"),
        "thr": find_col(hdr, lambda h: h == "predicated-on thread instructions executed", required=False),
    }
    stalls = [(i, h) for i, h in enumerate(hdr) if h.startswith("stall_") and "not issued" not in h.lower()]
    ins = []
    for r in rows[hi + 1:]:
        if len(r) < len(hdr) or not r[c["addr"]].startswith("0x"):
            continue
        full, base = opcode(r[c["src"]])
        ins.append({
            "i": len(ins), "addr": int(r[c["addr"]], 16), "src": " ".join(r[c["src"]].split()),
            "op": base, "opfull": full,
            "samp": num(r[c["samp"]]), "nis": num(r[c["nis"]]), "exec": num(r[c["exec"]]),
            "stalls": {h[6:]: num(r[i]) for i, h in stalls},
        })
    return kernel, hdr, c, ins


def regions(ins):
    n = len(ins)
    alloc = next(k for k, x in enumerate(ins) if "USETMAXREG.TRY_ALLOC" in x["src"])
    dealloc = next(k for k, x in enumerate(ins) if "USETMAXREG.DEALLOC" in x["src"])
    last_exit = max(k for k, x in enumerate(ins) if x["op"] == "EXIT")
    lab = [None] * n
    for k in range(n):
        lab[k] = "prologue" if k < alloc else "consumers" if k < dealloc else "producer" if k <= last_exit else None
    by_addr = {x["addr"]: k for k, x in enumerate(ins)}
    tail0 = last_exit + 1

    def targets(x):
        if x["op"] in ("BRA", "CALL", "JMP", "BRX"):
            m = ADDR.findall(x["src"])
            return [by_addr[int(a, 16)] for a in m if int(a, 16) in by_addr]
        return []

    seen = defaultdict(set)
    work = []
    for k in range(tail0):
        for t in targets(ins[k]):
            if t >= tail0:
                work.append((t, lab[k]))
    while work:
        k, r = work.pop()
        while k < n and r not in seen[k]:
            seen[k].add(r)
            x = ins[k]
            tg = targets(x)
            for t in tg:
                if t >= tail0:
                    work.append((t, r))
            uncond = not PRED.match(x["src"]) and x["op"] in ("BRA", "RET", "EXIT", "JMP", "BRX")
            if uncond:
                break
            k += 1
    tail_lab = {}
    for k in range(tail0, n):
        s = seen.get(k, set())
        tail_lab[k] = "unreached" if not s else s.pop() if len(s) == 1 else "shared"
        lab[k] = tail_lab[k]
    return lab, alloc, dealloc, last_exit, tail0


def pct(a, b):
    return 100.0 * a / b if b else 0.0


def summarize(path, tiles=None, cwarps=8, pwarps=4, hot=25):
    kernel, hdr, c, ins = load(path)
    lab, alloc, dealloc, last_exit, tail0 = regions(ins)
    tot_s = sum(x["samp"] for x in ins)
    tot_e = sum(x["exec"] for x in ins)
    tot_stall = Counter()
    for x in ins:
        tot_stall.update(x["stalls"])
    out = {"file": path, "kernel": kernel, "columns": {k: hdr[v] for k, v in c.items() if v is not None},
           "n_instr": len(ins), "alloc": alloc, "dealloc": dealloc, "last_exit": last_exit, "tail0": tail0,
           "total_samples": tot_s, "total_exec": tot_e, "stalls_all": dict(tot_stall), "regions": {}}
    for r in ["prologue", "consumers", "producer", "shared", "unreached"]:
        xs = [ins[k] for k in range(len(ins)) if lab[k] == r]
        if not xs:
            continue
        e = sum(x["exec"] for x in xs)
        s = sum(x["samp"] for x in xs)
        nis = sum(x["nis"] for x in xs)
        tail_e = sum(ins[k]["exec"] for k in range(tail0, len(ins)) if lab[k] == r)
        ex = Counter()
        sm = Counter()
        st = Counter()
        for x in xs:
            ex[x["op"]] += x["exec"]
            sm[x["op"]] += x["samp"]
            st.update(x["stalls"])
        out["regions"][r] = {"exec": e, "tail_exec": tail_e, "samples": s, "not_issued": nis,
                             "static": len(xs), "exec_by_op": dict(ex), "samp_by_op": dict(sm), "stalls": dict(st)}
    cons = [ins[k] for k in range(len(ins)) if lab[k] == "consumers"]
    out["hot_consumers"] = [
        {"i": x["i"], "samp": x["samp"], "exec": x["exec"], "src": x["src"],
         "top_stall": max(x["stalls"].items(), key=lambda kv: kv[1])[0] if x["samp"] else ""}
        for x in sorted(cons, key=lambda x: -x["samp"])[:hot]]
    prod = [ins[k] for k in range(len(ins)) if lab[k] == "producer"]
    out["hot_producer"] = [
        {"i": x["i"], "samp": x["samp"], "exec": x["exec"], "src": x["src"],
         "top_stall": max(x["stalls"].items(), key=lambda kv: kv[1])[0] if x["samp"] else ""}
        for x in sorted(prod, key=lambda x: -x["samp"])[:10]]
    # The steady loop bodies: instructions executed as often as the region's most executed non-wait instruction.
    for r, xs in (("consumers", cons), ("producer", prod)):
        cnt = Counter(x["exec"] for x in xs if x["exec"] > 0)
        # the body count: the execution count whose instructions add up to the most warp instructions
        body_n, _ = max(cnt.items(), key=lambda kv: kv[0] * kv[1])
        # the per-tile path: instructions executed at least 95% as often as the body (branches of it included)
        body = [x for x in xs if x["exec"] >= 0.95 * body_n]
        out["regions"][r]["loop_count"] = body_n
        out["regions"][r]["loop_static"] = len(body)
        out["regions"][r]["loop_static_by_op"] = dict(Counter(x["op"] for x in body))
    if tiles:
        for r, w in (("consumers", cwarps), ("producer", pwarps)):
            g = out["regions"][r]
            g["per_tile_per_warp"] = g["exec"] / (tiles * w)
            g["per_tile_per_warp_by_op"] = {k: v / (tiles * w) for k, v in g["exec_by_op"].items()}
    return out, ins, lab


def fmt_mix(d, total, n):
    items = sorted(d.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {pct(v, total):.1f}%" for k, v in items if v > 0)


def report(out, hot=25):
    L = []
    ts, te = out["total_samples"], out["total_exec"]
    L.append(f"{out['kernel']}: {out['n_instr']} SASS instructions; TRY_ALLOC at #{out['alloc']}, DEALLOC at #{out['dealloc']}, "
             f"last EXIT #{out['last_exit']}, out-of-line code #{out['tail0']}..; samples {ts:.0f}, warp instructions executed {te:.4g}")
    for r, g in out["regions"].items():
        L.append(f"{r}: warp instructions executed {g['exec']:.4g} ({pct(g['exec'], te):.1f}%; {g['tail_exec']:.3g} of them out of line), "
                 f"samples {pct(g['samples'], ts):.1f}% of all (not issued {pct(g['not_issued'], ts):.1f}%), {g['static']} static instructions")
        if r in ("consumers", "producer"):
            L.append(f"  executed mix: {fmt_mix(g['exec_by_op'], g['exec'], 12)}")
            L.append(f"  samples (% of all): {fmt_mix(g['samp_by_op'], ts, 10)}")
            L.append(f"  stall reasons (% of all samples): {fmt_mix(g['stalls'], ts, 8)}")
            L.append(f"  per-tile path: {g['loop_static']} static instructions executed >= 95% of {g['loop_count']:.0f} times (the loop body's count)")
            if "per_tile_per_warp" in g:
                top = sorted(g["per_tile_per_warp_by_op"].items(), key=lambda kv: -kv[1])[:14]
                L.append(f"  per KV tile per warp: {g['per_tile_per_warp']:.1f} warp instructions: "
                         + ", ".join(f"{k} {v:.1f}" for k, v in top))
    L.append(f"stall reasons, whole kernel (% of all samples): {fmt_mix(out['stalls_all'], ts, 10)}")
    L.append(f"hottest {hot} consumer instructions (# in the SASS page, % of all samples, warp instructions executed, top stall):")
    for h in out["hot_consumers"][:hot]:
        L.append(f"  {h['i']:5d} {pct(h['samp'], ts):5.2f}% {h['exec']:9.0f}  {h['top_stall']:<16} {h['src']}")
    L.append("hottest 10 producer instructions:")
    for h in out["hot_producer"]:
        L.append(f"  {h['i']:5d} {pct(h['samp'], ts):5.2f}% {h['exec']:9.0f}  {h['top_stall']:<16} {h['src']}")
    return "\n".join(L)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--tiles", type=float, default=None, help="KV tiles in the launch (items x tiles per item)")
    ap.add_argument("--cwarps", type=int, default=8)
    ap.add_argument("--pwarps", type=int, default=4)
    ap.add_argument("--hot", type=int, default=25)
    ap.add_argument("--json", default=None)
    ap.add_argument("--diff", action="store_true", help="with two files: per-tile-per-warp opcode counts side by side")
    a = ap.parse_args()
    outs = []
    for p in a.csv:
        out, ins, lab = summarize(p, a.tiles, a.cwarps, a.pwarps, a.hot)
        outs.append(out)
        print(report(out, a.hot))
        print()
    if a.diff and len(outs) == 2 and a.tiles:
        A, B = outs
        for r in ("consumers", "producer"):
            da = A["regions"][r]["per_tile_per_warp_by_op"]
            db = B["regions"][r]["per_tile_per_warp_by_op"]
            keys = sorted(set(da) | set(db), key=lambda k: -abs(db.get(k, 0) - da.get(k, 0)))
            print(f"{r}, warp instructions per KV tile per warp: {A['kernel']} -> {B['kernel']}")
            print(f"  total {A['regions'][r]['per_tile_per_warp']:.1f} -> {B['regions'][r]['per_tile_per_warp']:.1f}")
            for k in keys[:16]:
                x, y = da.get(k, 0), db.get(k, 0)
                if abs(y - x) >= 0.05:
                    print(f"  {k:<10} {x:7.2f} -> {y:7.2f}  ({y - x:+.2f})")
            ta, tb = A["total_samples"], B["total_samples"]
            sta, stb = A["regions"][r]["stalls"], B["regions"][r]["stalls"]
            print(f"  samples: {A['regions'][r]['samples']:.0f} -> {B['regions'][r]['samples']:.0f} "
                  f"({B['regions'][r]['samples'] - A['regions'][r]['samples']:+.0f}, {pct(B['regions'][r]['samples'] - A['regions'][r]['samples'], ta):+.1f}% of {A['kernel']}'s samples); by stall reason:")
            keys = sorted(set(sta) | set(stb), key=lambda k: -abs(stb.get(k, 0) - sta.get(k, 0)))
            print("   " + ", ".join(f"{k} {sta.get(k, 0):.0f}->{stb.get(k, 0):.0f} ({stb.get(k, 0) - sta.get(k, 0):+.0f})" for k in keys[:9]))
            sma, smb = A["regions"][r]["samp_by_op"], B["regions"][r]["samp_by_op"]
            keys = sorted(set(sma) | set(smb), key=lambda k: -abs(smb.get(k, 0) - sma.get(k, 0)))
            print("  samples by opcode: " + ", ".join(f"{k} {sma.get(k, 0):.0f}->{smb.get(k, 0):.0f}" for k in keys[:9]))
            sa = A["regions"][r]["loop_static_by_op"]
            sb = B["regions"][r]["loop_static_by_op"]
            print(f"  steady loop body, static instructions: {A['regions'][r]['loop_static']} -> {B['regions'][r]['loop_static']}; by opcode (changed):")
            keys = sorted(set(sa) | set(sb), key=lambda k: -abs(sb.get(k, 0) - sa.get(k, 0)))
            print("   " + ", ".join(f"{k} {sa.get(k, 0)}->{sb.get(k, 0)}" for k in keys if sa.get(k, 0) != sb.get(k, 0)))
            print()
    if a.json:
        json.dump(outs, open(a.json, "w"), indent=1)
