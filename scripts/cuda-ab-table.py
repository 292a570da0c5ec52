#!/usr/bin/env python3
"""Same-run A/B table from scripts/cuda-bench.ts logs made with --clock-probe.

Each timed variant prints a line 'SPEC DTYPE B.. H.. N.. D.. KERNEL LABEL TILES: median ...' and, under it,
'SM cycles per launch: median X M (min Y M)'. SM cycles do not depend on the clock the GPU chose, so they compare
variants timed minutes apart. Per (spec, dtype, shape, D) this prints every label's median SM cycles (the median over
the runs found, each run's own median in brackets) and its ratio to the group's first label (< 1: fewer cycles,
faster), plus the milliseconds' minimum for reference.

  python3 scripts/cuda-ab-table.py LOG [LOG...] [--json OUT.json]
"""
import json
import re
import statistics
import sys

HEAD = re.compile(r'^(\S+)\s+(bf16|f16|f32) B(\d+) H(\d+) N(\d+) D(\d+) (\S+) (\S+)\s+(.*?): median ([\d.]+) ms .*\(min ([\d.]+),')
CYCLES = re.compile(r'^\s+SM cycles per launch: median ([\d.]+) M \(min ([\d.]+) M\)')
FAILED = re.compile(r'^(\S+)\s+(bf16|f16|f32) B(\d+) H(\d+) N(\d+) D(\d+) (\S+): failed: (.*)')


def parse(paths):
    groups = {}  # key -> label -> {'cycles': [...], 'min_ms': [...], 'tiles': str, 'failed': str}
    for path in paths:
        last = None
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                m = HEAD.match(line)
                if m:
                    spec, dt, b, h, n, d, _kernel, label, tiles, _med, mn = m.groups()
                    key = (spec, dt, int(b), int(h), int(n), int(d))
                    row = groups.setdefault(key, {}).setdefault(label, {'cycles': [], 'min_ms': [], 'tiles': tiles, 'failed': ''})
                    row['min_ms'].append(float(mn))
                    last = row
                    continue
                m = CYCLES.match(line)
                if m and last is not None:
                    last['cycles'].append(float(m.group(1)))
                    last = None
                    continue
                m = FAILED.match(line)
                if m:
                    spec, dt, b, h, n, d, label, why = m.groups()
                    key = (spec, dt, int(b), int(h), int(n), int(d))
                    groups.setdefault(key, {}).setdefault(label, {'cycles': [], 'min_ms': [], 'tiles': '', 'failed': why})['failed'] = why
    return groups


def main(argv):
    out_json = None
    if '--json' in argv:
        i = argv.index('--json')
        out_json = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    groups = parse(argv)
    if not groups:
        print('cuda-ab-table: no timed variants with SM cycles in ' + ', '.join(argv), file=sys.stderr)
        return 1
    rows = []
    for key in sorted(groups):
        spec, dt, b, h, n, d = key
        print(f'{spec} {dt} B{b} H{h} N{n} D{d}')
        base = None
        for label, r in groups[key].items():
            if r['failed'] and not r['cycles']:
                print(f'  {label:<16} failed: {r["failed"]}')
                rows.append({'spec': spec, 'dtype': dt, 'B': b, 'H': h, 'N': n, 'D': d, 'label': label, 'failed': r['failed']})
                continue
            if not r['cycles']:
                print(f'  {label:<16} no SM cycles (run without --clock-probe?)')
                continue
            med = statistics.median(r['cycles'])
            base = base if base is not None else med
            runs = ' '.join(f'{c:.3f}' for c in r['cycles'])
            print(f'  {label:<16} {r["tiles"]:<28} {med:8.3f} M cycles [{runs}]  x{med / base:.3f}  min {min(r["min_ms"]):.3f} ms')
            rows.append({'spec': spec, 'dtype': dt, 'B': b, 'H': h, 'N': n, 'D': d, 'label': label, 'tiles': r['tiles'],
                         'mcycles_median': med, 'mcycles_runs': r['cycles'], 'vs_first': med / base, 'min_ms': min(r['min_ms'])})
    if out_json:
        with open(out_json, 'w', encoding='utf-8') as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
