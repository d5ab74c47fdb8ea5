#!/usr/bin/env bash
# Download, here, the wheels that scripts/gpu_check.py installs on a GPU machine that reaches no registry:
# the packages of scripts/gpu_wheels.txt for that machine's Python and platform, and a wheel of basicsr 1.4.2
# (an sdist on the registry) built here. torch, torchvision and the nvidia-* libraries are never fetched: the
# GPU machine's own CUDA build is used.
#
#   bash scripts/fetch_gpu_wheels.sh [DIR]        # default DIR: wheels/gpu (ignored by git)
#
# Environment: PYTHON (the pip to use; default .venv/bin/python, else python3), GPU_PYTHON_VERSION (3.12).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$root/wheels/gpu}
python=${PYTHON:-$root/.venv/bin/python}
[[ -x $python ]] || python=python3
version=${GPU_PYTHON_VERSION:-3.12}
abi=cp${version/./}

mkdir -p "$dest"
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
    manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --abi "$abi" --abi abi3 --abi none "${platforms[@]}" --platform any -d "$dest" -r "$root/scripts/gpu_wheels.txt"

# basicsr builds no extension unless BASICSR_EXT is set: the wheel must come out pure Python (py3-none-any).
env -u BASICSR_EXT "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$dest" basicsr==1.4.2
if [[ ! -f $dest/basicsr-1.4.2-py3-none-any.whl ]]; then
    echo "error: basicsr 1.4.2 did not build as a pure-Python wheel in $dest; build it without BASICSR_EXT" >&2
    exit 1
fi

if compgen -G "$dest/torch-*" >/dev/null || compgen -G "$dest/torchvision-*" >/dev/null \
    || compgen -G "$dest/nvidia_*" >/dev/null; then
    echo "error: $dest holds torch, torchvision or nvidia wheels; remove them: the GPU machine's own are used" >&2
    exit 1
fi
du -ch "$dest"/*.whl | sed 's|'"$dest"'/||'
