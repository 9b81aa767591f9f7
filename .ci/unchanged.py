#!/usr/bin/env python
"""Run a command and fail if it changed any file under the given folders.

Usage: python .ci/unchanged.py FOLDER[,FOLDER...] -- COMMAND...
Used by `make test`: nbdev_clean must leave nbs/ unchanged (notebooks are stored clean) and
nbdev_export must leave cervix_nb/ unchanged (the library is what the notebooks say).
"""
import hashlib, subprocess, sys
from pathlib import Path

def snapshot(folders):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders for p in sorted(Path(f).rglob('*'))
            if p.is_file() and not p.is_symlink() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts}

def main(argv):
    if '--' not in argv: sys.exit(__doc__)
    i = argv.index('--')
    folders, cmd = argv[0].split(','), argv[i+1:]
    before = snapshot(folders)
    rc = subprocess.call(cmd)
    if rc: sys.exit(f"{' '.join(cmd)} failed with exit status {rc}")
    after = snapshot(folders)
    changed = sorted(str(p) for p in set(before) | set(after) if before.get(p) != after.get(p))
    if changed:
        print(f"FAILED: {' '.join(cmd)} changed {len(changed)} file(s); run it and commit the result:", *changed, sep='\n  ', file=sys.stderr)
        sys.exit(1)
    print(f"ok: {' '.join(cmd)} changed nothing in {', '.join(folders)}")

if __name__ == '__main__': main(sys.argv[1:])
