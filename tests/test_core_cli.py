"Command-line and property tests for cervix_nb.core: what a user meets outside the notebooks."
import configparser, os, signal, subprocess, sys, time
from pathlib import Path

import nbformat, pandas as pd, pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _nb(path, *sources):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)


def _run(*args, **kw):
    return subprocess.run([str(BIN/'cervix-reproduce'), *args], capture_output=True, text=True, **kw)


def test_settings_flags():
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    d = cfg['DEFAULT']
    assert d['tst_flags'].split() == ['slow', 'gpu']  # requirements: tests/test_install.py


def test_bad_scale_is_a_clear_error(tmp_path):
    r = _run("--scale", "huge", "--out", str(tmp_path/"run"))
    assert r.returncode != 0
    assert "unknown scale 'huge' (from argument): choose one of 'quick', 'study', 'paper'" in r.stderr


def test_bad_scale_from_environment(tmp_path):
    r = _run('--run_dir', str(tmp_path/'run'), env={**os.environ, 'CERVIX_SCALE': 'Fast'})
    assert r.returncode != 0 and 'from environment variable CERVIX_SCALE' in r.stderr


def test_missing_notebook_folder(tmp_path):
    r = _run('--nbs', str(tmp_path/'nowhere'))
    assert r.returncode != 0 and 'nowhere: notebook folder not found' in r.stderr


def test_reproduce_end_to_end(tmp_path):
    nbs = tmp_path/'nbs'; nbs.mkdir()
    _nb(nbs/'01_a.ipynb', 'from cervix_nb.core import *\nimport os',
        "assert get_scale().name == 'quick' and os.environ['CERVIX_OUT'].endswith('01_a')",
        "save_results(results_table([dict(metric='binary accuracy (%)', paper=95.0, ours=91.5)], '01_a', get_scale()), '01_a')",
        "#| gpu\nraise SystemExit('gpu cell must not run at quick scale')")
    r = _run('--nbs', str(nbs), '--sections', '01_a', '--out', str(tmp_path/'run'), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"results in {tmp_path/'run'}" in r.stdout
    df = pd.read_csv(tmp_path/'run'/'summary.csv')
    assert df[['metric', 'paper', 'ours', 'data']].values.tolist() == [['binary accuracy (%)', 95.0, 91.5, 'synthetic']]
    assert (tmp_path/'run'/'01_a'/'01_a.ipynb').exists()


def test_atomic_write_survives_a_kill(tmp_path):
    "A writer killed mid-write (SIGKILL: no cleanup runs) leaves no destination file."
    dest = tmp_path/'slide_tiles.csv'
    code = ("import sys, time; from cervix_nb.core import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    f = open(tmp, 'w')\n"
            "    for i in range(10**6): f.write(f'{i},0.5\\n'); f.flush(); print('writing', flush=True) if i == 10 else None; time.sleep(0.001)\n")
    p = subprocess.Popen([sys.executable, '-c', code, str(dest)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'writing'
    p.send_signal(signal.SIGKILL); p.wait()
    assert not dest.exists()
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith('.slide_tiles.')], 'the partial file is the hidden temporary'


def test_unchanged_detects_a_change(tmp_path):
    (tmp_path/'f.txt').write_text('a')
    ok = subprocess.run([sys.executable, ROOT/'.ci'/'unchanged.py', str(tmp_path), '--', 'true'], capture_output=True, text=True)
    assert ok.returncode == 0
    bad = subprocess.run([sys.executable, ROOT/'.ci'/'unchanged.py', str(tmp_path), '--', 'sh', '-c', f'echo b > {tmp_path}/f.txt'],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and 'f.txt' in bad.stderr


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    """A run killed in the middle of its second section (SIGKILL to the command and its notebook:
    a runtime that disconnects) resumes with --resume: the finished section is kept, not run again,
    and the results equal an uninterrupted run's."""
    nbs, ran = tmp_path/'nbs', tmp_path/'ran.txt'
    nbs.mkdir()
    _nb(nbs/'01_a.ipynb', 'from cervix_nb.core import *',
        f"open({str(ran)!r}, 'a').write('01_a\\n')",
        "save_results(results_table([dict(metric='accuracy (%)', paper=72.6, ours=50.0)], '01_a', get_scale()), '01_a')")
    _nb(nbs/'02_b.ipynb', 'from cervix_nb.core import *\nimport os, time',
        f"open({str(ran)!r}, 'a').write('02_b\\n')",
        "while os.environ.get('HOLD_02_B'): time.sleep(0.2)  # the first run waits here until killed",
        "save_results(results_table([dict(metric='kappa', paper=0.8, ours=0.7)], '02_b', get_scale()), '02_b')")
    p = subprocess.Popen([str(BIN/'cervix-reproduce'), '--nbs', str(nbs), '--out', str(tmp_path/'run')],
                         cwd=tmp_path, env={**os.environ, 'HOLD_02_B': '1'}, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0, in_02_b = time.time(), lambda: ran.exists() and '02_b' in ran.read_text()
    while not in_02_b():
        assert time.time() - t0 < 120 and p.poll() is None, 'the run did not reach 02_b'
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert not (tmp_path/'run'/'summary.csv').exists()          # the run did not finish
    r = _run('--resume', str(tmp_path/'run'), '--nbs', str(nbs), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '01_a.ipynb finished earlier' in r.stdout and '02_b.ipynb: runs (not finished)' in r.stdout, r.stdout
    assert ran.read_text().split() == ['01_a', '02_b', '02_b']   # 01_a ran once: fewer runs than twice over
    whole = _run('--nbs', str(nbs), '--out', str(tmp_path/'whole'), cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    cols = ['section', 'metric', 'paper', 'ours', 'data', 'scale']
    resumed, straight = (pd.read_csv(tmp_path/d/'summary.csv')[cols] for d in ('run', 'whole'))
    pd.testing.assert_frame_equal(resumed, straight)
    both = _run('--resume', str(tmp_path/'run'), '--out', str(tmp_path/'x'), cwd=tmp_path)
    assert both.returncode != 0 and 'not both' in both.stderr


def test_plan_answers_in_seconds_and_runs_nothing(tmp_path):
    "`--plan`: the paper scale's work and hours per section (06c_plan), in under 30 s; no run folder."
    t0 = time.time()
    r = _run('--scale', 'paper', '--plan', env={**os.environ, 'CERVIX_DATA': str(tmp_path)}, cwd=tmp_path)
    took = time.time() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith('Plan of a paper-scale run') and took < 30, (took, r.stdout[:300])
    for sec in ('01_herlev', '03_baselines', '05_clinical', '06_slides', '06b_segmentation'):
        assert f'\n{sec}: ' in r.stdout, sec                      # each section's work in words
    assert 'resnet101 800 px, 1,309 images x 500' in r.stdout     # 03: 5 pipelines x 5 repeats x 20 epochs
    assert not (tmp_path/'runs').exists()
