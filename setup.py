"""Install the ``mmdet3d`` package and build the ``bev_pool_v2`` extension.

The extension is a CUDAExtension (C++ CPU kernels + CUDA kernels) when CUDA is usable
(``torch.cuda.is_available()`` with a CUDA toolkit) or ``FORCE_CUDA=1``; otherwise a
CppExtension with the CPU kernels only, so a machine without CUDA always builds. The CUDA
architectures come from ``TORCH_CUDA_ARCH_LIST`` (e.g. ``"9.0"`` for H100), by default 7.0-9.0
with PTX (7.5-9.0 for nvcc >= 13). ``BUILD_NO_EXT=1`` skips the extension entirely (the
pure-PyTorch reference is then used). Install with::

    pip install --no-build-isolation -e .

because the build imports the torch that is already installed.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
EXT_DIR = Path('mmdet3d') / 'ops' / 'bev_pool_v2' / 'src'


def read_version() -> str:
    namespace: dict = {}
    exec((ROOT / 'mmdet3d' / 'version.py').read_text(), namespace)
    return namespace['__version__']


def read_requirements(name: str) -> list[str]:
    lines = (ROOT / 'requirements' / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(('#', '-r'))]


DEFAULT_CUDA_ARCHS = ('7.0', '7.5', '8.0', '8.6', '8.9', '9.0+PTX')


def cuda_wanted() -> bool:
    """True when the CUDA kernels should be compiled (FORCE_CUDA=1, or CUDA usable here)."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME

    if os.getenv('FORCE_CUDA', '0') == '1':
        if CUDA_HOME is None:
            raise RuntimeError(
                'FORCE_CUDA=1 needs a CUDA build of torch and a CUDA toolkit (CUDA_HOME); found '
                f'torch {torch.__version__} with CUDA_HOME=None. Unset FORCE_CUDA for a CPU build.')
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def default_cuda_archs() -> str:
    """Volta (7.0) to Hopper (9.0, with PTX); 7.0 is dropped for nvcc >= 13, which lacks it."""
    from torch.utils.cpp_extension import CUDA_HOME

    try:
        out = subprocess.run([str(Path(CUDA_HOME) / 'bin' / 'nvcc'), '--version'],
                             capture_output=True, text=True).stdout
    except OSError:
        out = ''
    match = re.search(r'release (\d+)\.', out)
    archs = DEFAULT_CUDA_ARCHS
    if match and int(match.group(1)) >= 13:
        archs = archs[1:]
    return ';'.join(archs)


def make_extensions() -> tuple[list, dict]:
    """The bev_pool_v2 extension and the build command class, or nothing if disabled."""
    cpp_sources = sorted(str(p) for p in EXT_DIR.glob('*.cpp'))
    cuda_sources = sorted(str(p) for p in EXT_DIR.glob('*.cu'))
    if os.getenv('BUILD_NO_EXT', '0') == '1' or not cpp_sources:
        return [], {}
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    # no -std flag: torch's BuildExtension adds the standard its headers need (C++20 for 2.13)
    cxx_flags = ['-O3']
    name = 'mmdet3d.ops.bev_pool_v2.bev_pool_v2_ext'
    if cuda_wanted() and cuda_sources:
        if not os.getenv('TORCH_CUDA_ARCH_LIST'):
            os.environ['TORCH_CUDA_ARCH_LIST'] = default_cuda_archs()
        ext = CUDAExtension(
            name,
            sources=cpp_sources + cuda_sources,
            define_macros=[('WITH_CUDA', None)],
            extra_compile_args={'cxx': cxx_flags, 'nvcc': ['-O3']})
    else:
        ext = CppExtension(name, sources=cpp_sources, extra_compile_args={'cxx': cxx_flags})
    return [ext], {'build_ext': BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = make_extensions()

setup(
    name='occflownet-mmdet3d',
    version=read_version(),
    description='OccFlowNet: self-supervised occupancy estimation via differentiable '
    'rendering and occupancy flow (re-implementation on mmengine)',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['mmdet3d', 'mmdet3d.*']),
    include_package_data=True,
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'optional': read_requirements('optional.txt')},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
