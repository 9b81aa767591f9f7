#!/usr/bin/env python
"""Run nbdev_test on every notebook in nbs/ and print a closing line `N passed, N failed`.

nbdev_test exits 0 when it finds no notebook and prints no counts, so this wrapper checks that every
notebook in nbs/ was started and completed, reads nbdev's list of failed notebooks, and fails when any
notebook failed or never ran, and records each notebook's wall time for the timing table
(.ci/timing.py). Extra arguments go to nbdev_test (for example --flags "slow gpu").

Notebooks run one at a time unless --n_workers is given: each training notebook already uses every core
through torch, and two side by side oversubscribe them (on 2 cores, 01_herlev took 536 s beside
03_baselines and 64 s alone).
"""
import re, subprocess, sys, time
from pathlib import Path

from timing import record

ROOT = Path(__file__).resolve().parent.parent

def main(args) -> int:
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    if not nbs: print('0 passed, 0 failed (no notebook in nbs/)'); return 1
    bin_dir = Path(sys.executable).parent
    if '--n_workers' not in args: args = ['--n_workers', '1', *args]
    proc = subprocess.Popen([str(bin_dir/'nbdev_test'), '--do_print', '--timing', *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines, started = [], {}
    for line in proc.stdout:  # stream, so a long run shows which notebook it is on
        sys.stdout.write(line); sys.stdout.flush(); lines.append(line)
        if m := re.match(r'Starting (\S+\.ipynb)', line): started[Path(m[1]).name] = time.time()
        if (m := re.match(r'- Completed (\S+\.ipynb)', line)) and Path(m[1]).name in started:
            name = Path(m[1]).name
            record('notebook', name, time.time() - started[name])
            print(f"  ({name}: {time.time() - started[name]:.0f} s)", flush=True)
    proc.wait()
    out = ''.join(lines)
    completed = {Path(m).name for m in re.findall(r'- Completed (\S+\.ipynb)', out)}
    failed_block = out.split('nbdev Tests Failed On The Following Notebooks:')[-1] if 'Tests Failed' in out else ''
    failed = {n for n in nbs if re.search(rf'^\t{re.escape(n)}$', failed_block, flags=re.M)}
    missing = [n for n in nbs if n not in completed]
    if missing: print(f"notebooks nbdev_test did not run: {missing}", file=sys.stderr)
    passed = len([n for n in nbs if n in completed and n not in failed])
    print(f"{passed} passed, {len(failed) + len(missing)} failed")
    return 0 if passed == len(nbs) and proc.returncode == 0 else 1

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
