"""Installing cervix_nb beside a platform's own torch (Colab, a JupyterHub): settings.ini asks for
ranges, constraints.txt pins what we test, and pip proposes no torch change where one is installed."""
import configparser, json, re, shutil, subprocess, sys, venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(next(p for p in sys.path if p.endswith('site-packages')))


def _requirements() -> list:
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    return cfg['DEFAULT']['requirements'].split()


def _name(req:str) -> str:
    "A requirement's project name, normalised as pip compares them (PEP 503)."
    return re.sub(r'[-_.]+', '-', re.split(r'[<>=!~\[ ;]', req, maxsplit=1)[0]).lower()


def _pins(path:Path) -> dict:
    lines = [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith('#')]
    return {_name(l): l.split('==', 1)[1] for l in lines}


def test_requirements_are_ranges_and_constraints_pin_them():
    reqs = _requirements()
    assert not [r for r in reqs if '==' in r], reqs  # a library declares ranges
    for bound in ['fastcore<2', 'execnb<0.2', 'ghapi<2', 'nbdev>=2.3,<3']: assert bound in reqs, bound
    pins = _pins(ROOT/'constraints.txt')
    for name in ['torch', 'torchvision', 'nbdev', 'fastcore', 'execnb', 'ghapi', 'numpy', 'captum']:
        assert name in pins, f'constraints.txt pins no {name}'
    assert pins['nbdev'] == '2.4.14' and pins['torch'].startswith('2.14.1')
    missing = [_name(r) for r in reqs if _name(r) not in pins]
    assert not missing, f'constraints.txt lacks {missing}'
    assert '-c constraints.txt' in (ROOT/'Makefile').read_text()  # make install uses it


def _fake_dist(site:Path, name:str, version:str, requires=()):
    "An installed distribution's metadata alone: all pip's resolver reads of what is installed."
    d = site/f'{name}-{version}.dist-info'; d.mkdir()
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    (d/'METADATA').write_text('\n'.join(meta + [f'Requires-Dist: {r}' for r in requires]) + '\n')
    (d/'INSTALLER').write_text('pip\n'); (d/'RECORD').write_text('')


def _env_with_other_torch(tmp:Path, torch_version:str, vision_version:str) -> Path:
    """A venv that sees this environment's installed packages, except that torch and torchvision
    are other versions (metadata only: nothing is imported)."""
    env = tmp/'env'; venv.create(env, with_pip=False, system_site_packages=False)
    site = next((env/'lib').glob('python*/site-packages'))
    seen = tmp/'seen'; seen.mkdir()
    for d in SITE.glob('*.dist-info'):
        if _name(d.name.split('-')[0]) in ('torch', 'torchvision', 'cervix-nb'): continue
        (seen/d.name).symlink_to(d)
    for tool in ['pip', 'setuptools', '_distutils_hack', 'wheel']: (seen/tool).symlink_to(SITE/tool)
    (site/'zz_seen.pth').write_text(str(seen) + '\n')
    _fake_dist(seen, 'torch', torch_version, ['filelock', 'typing-extensions', 'sympy'])
    _fake_dist(seen, 'torchvision', vision_version, ['numpy', f'torch=={torch_version}', 'pillow'])
    return env


def _dry_run(env:Path, tmp:Path, project:Path) -> tuple:
    "pip's plan for `pip install -e project` in `env`, offline: (return code, names it would install)."
    report = tmp/'report.json'
    r = subprocess.run([str(env/'bin'/'python'), '-m', 'pip', 'install', '--dry-run', '--no-index',
                        '--no-build-isolation', '--report', str(report), '-e', str(project)],
                       capture_output=True, text=True, cwd=tmp, timeout=300)
    if r.returncode: return r.returncode, r.stdout + r.stderr
    plan = json.loads(report.read_text())['install']
    return 0, sorted(p['metadata']['name'].lower() for p in plan)


def _project_copy(tmp:Path, requirements:str|None=None) -> Path:
    "settings.ini, setup.py and the package, as pip needs them to read the project's metadata."
    p = tmp/'project'; p.mkdir()
    for f in ['settings.ini', 'setup.py', 'pyproject.toml', 'README.md']: shutil.copy(ROOT/f, p/f)
    shutil.copytree(ROOT/'cervix_nb', p/'cervix_nb', ignore=shutil.ignore_patterns('__pycache__'))
    if requirements:
        s = (p/'settings.ini').read_text()
        (p/'settings.ini').write_text(re.sub(r'(?m)^requirements = .*$', f'requirements = {requirements}', s))
    return p


def test_install_keeps_an_installed_torch(tmp_path):
    "Colab's case: another torch and its torchvision installed; pip would install cervix_nb alone."
    env = _env_with_other_torch(tmp_path, '2.13.0', '0.28.0')
    rc, plan = _dry_run(env, tmp_path, _project_copy(tmp_path))
    assert rc == 0, plan
    assert plan == ['cervix_nb'], plan  # no torch, no torchvision, nothing else changed
    # the control: the old exact pins would replace that torch (offline, pip cannot even find it)
    pinned = ' '.join(r if _name(r) not in ('torch', 'torchvision') else
                      {'torch': 'torch==2.14.1', 'torchvision': 'torchvision==0.29.1'}[_name(r)]
                      for r in _requirements())
    shutil.rmtree(tmp_path/'project')
    rc, err = _dry_run(env, tmp_path, _project_copy(tmp_path, pinned))
    assert rc != 0 and 'torch==2.14.1' in err, err  # pip would have to replace torch 2.13.0
