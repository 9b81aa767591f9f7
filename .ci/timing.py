#!/usr/bin/env python
"""Where `make test`'s time goes, so growth shows in every CI log.

Usage:
  python .ci/timing.py start                     # a new record (make test's first step)
  python .ci/timing.py run STAGE -- COMMAND...   # run COMMAND, record its wall time as STAGE
  python .ci/timing.py report                    # the table: stages, each notebook, 15 slowest tests

Records are lines of JSON in _timing/times.jsonl (git-ignored): `kind` (stage, notebook, install), `name`,
`seconds`. .ci/nbtest.py adds one line per notebook; pytest writes _timing/pytest.xml (JUnit), read here for
the slowest tests; the Makefile's install step leaves .venv/.install_seconds, counted when it ran in this
record's time.
"""
import json, subprocess, sys, time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT/'_timing'
TIMES, JUNIT = DIR/'times.jsonl', DIR/'pytest.xml'
INSTALL = ROOT/'.venv'/'.install_seconds'


def record(kind: str, name: str, seconds: float) -> None:
    "Append one timing line."
    DIR.mkdir(exist_ok=True)
    with open(TIMES, 'a') as f: f.write(json.dumps(dict(kind=kind, name=name, seconds=round(seconds, 1))) + '\n')


def start() -> int:
    DIR.mkdir(exist_ok=True)
    TIMES.write_text(''); JUNIT.unlink(missing_ok=True)
    if INSTALL.exists() and time.time() - INSTALL.stat().st_mtime < 3600 * 2:
        record('install', '.venv set up (this run)', float(INSTALL.read_text()))
    return 0


def run(stage: str, cmd: list) -> int:
    t0 = time.time()
    rc = subprocess.call(cmd)
    record('stage', stage, time.time() - t0)
    if rc: report()  # make stops here: show where the time went up to the failure
    return rc


def slowest_tests(n: int = 15) -> list:
    "The n slowest pytest tests, (seconds, node id), from the JUnit file."
    if not JUNIT.exists(): return []
    cases = [(float(c.get('time', 0)), f"{c.get('classname', '')}::{c.get('name')}")
             for c in ET.parse(JUNIT).iter('testcase')]
    return sorted(cases, reverse=True)[:n]


def table(rows: list, head: tuple) -> str:
    "A small aligned text table (fits a terminal and a CI log)."
    w = max([len(head[0])] + [len(r[0]) for r in rows])
    lines = [f"{head[0]:<{w}}  {head[1]:>8}", f"{'-' * w}  {'-' * 8}"]
    return '\n'.join(lines + [f"{name:<{w}}  {secs:>8.0f}" for name, secs in rows])


def report() -> int:
    lines = [json.loads(l) for l in TIMES.read_text().splitlines() if l.strip()] if TIMES.exists() else []
    by = lambda k: [(r['name'], r['seconds']) for r in lines if r['kind'] == k]
    stages = by('install') + by('stage')
    print('\n== make test: where the time went (wall seconds, this machine) ==')
    print(table(stages + [('total', sum(s for _, s in stages))], ('stage', 'seconds')))
    nbs = sorted(by('notebook'), key=lambda r: -r[1])
    if nbs: print('\n' + table(nbs + [('all notebooks', sum(s for _, s in nbs))], ('notebook', 'seconds')))
    tests = [(name.removeprefix('tests.'), s) for s, name in slowest_tests()]
    if tests: print('\n' + table(tests, ('15 slowest tests', 'seconds')))
    return 0


if __name__ == '__main__':
    a = sys.argv[1:]
    if a[:1] == ['start']: sys.exit(start())
    if a[:1] == ['report']: sys.exit(report())
    if a[:1] == ['run'] and len(a) > 3 and a[2] == '--': sys.exit(run(a[1], a[3:]))
    sys.exit(__doc__)
