#!/usr/bin/env bash
# The GPU suite on a device machine, one command: install the wheels carried in .whl/, then run bench/gpu_suite.py.
# The device image has torch but not captum, tiffslide (zarr, imagecodecs), fastcore or torchstain. Before the call,
# here in the repository's root (Python 3.12 wheels for the device):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl captum tiffslide zarr numcodecs donfig crc32c imagecodecs fastcore torchstain
# and call the device with carry ['.whl'] and: bash bench/gpu_suite.sh        (add --tiny for a dry run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1 CERVIX_DATA="${CERVIX_DATA:-/tmp/cervix-data}"
python3 bench/gpu_suite.py "$@"
