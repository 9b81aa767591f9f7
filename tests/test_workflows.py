"The GitHub workflows a fork gets: valid YAML, each step a command that exists here; .ci/run needs none of them."
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT/'.github'/'workflows'


def _load(name):
    flow = yaml.safe_load((FLOWS/name).read_text())
    flow['on'] = flow.pop(True, flow.get('on'))  # YAML 1.1 reads the key `on` as True
    return flow


def _runs(flow):
    return '\n'.join(s.get('run', '') for job in flow['jobs'].values() for s in job['steps'])


def test_test_workflow_runs_nbdev_test_on_push():
    flow = _load('test.yaml')
    assert 'push' in flow['on'] and 'pull_request' in flow['on']
    runs = _runs(flow)
    for cmd in ('make install', '.ci/nbtest.py', 'nbdev_clean', 'nbdev_export', 'pytest tests'):
        assert cmd in runs, cmd
    assert (ROOT/'.ci'/'nbtest.py').exists() and (ROOT/'.ci'/'unchanged.py').exists()


def test_deploy_workflow_publishes_the_quarto_site():
    flow = _load('deploy.yaml')
    assert flow['on']['push']['branches'] == ['main']
    assert flow['permissions']['pages'] == 'write' and flow['permissions']['id-token'] == 'write'
    steps = flow['jobs']['deploy']['steps']
    uses = [s.get('uses', '').split('@')[0] for s in steps]
    assert 'quarto-dev/quarto-actions/setup' in uses and 'actions/deploy-pages' in uses
    assert 'make docs' in _runs(flow)
    assert next(s for s in steps if 'upload-pages-artifact' in s.get('uses', ''))['with']['path'] == '_docs'
    assert 'docs:' in (ROOT/'Makefile').read_text()


def test_ci_run_needs_no_workflow():
    assert '.github' not in (ROOT/'.ci'/'run').read_text()
