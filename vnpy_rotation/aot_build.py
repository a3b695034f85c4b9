"""Compile the backtest's numba loops ahead of time into ``vnpy_rotation._compiled``.

    python -m vnpy_rotation.aot_build [OUTPUT_DIR]

Run by ``pip install`` (setup.py's build_ext) and by hand after editing a compiled module: the extension
carries a stamp of the sources it was compiled from and :mod:`vnpy_rotation.compiled` ignores it once they
change. Uses ``numba.pycc``, numba's ahead-of-time compiler: "pending deprecation" since numba 0.57 and still
shipped in 0.68 (https://numba.readthedocs.io/en/stable/reference/deprecation.html#deprecation-of-the-numba-pycc-module);
its notice is silenced here, in the build only. Once a numba without it is installed, the build fails, setup.py
skips the extension and the package runs on numba's JIT as before. It links with the system's C compiler (none:
the same fallback). Each exported function gets the exact argument types its callers pass (``export=`` of
:func:`~vnpy_rotation.compiled.jit`).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

CPU_ENV = "VNPY_ROTATION_AOT_CPU"  # the LLVM CPU the extension is built for: host (default), generic, …
# The modules declaring exported functions (jit(export=...)).
MODULES = ("vnpy_rotation.backtest.kernel", "vnpy_rotation.rotation.selection", "vnpy_rotation.rotation.capacity")


def _numba_type(code: str) -> Any:
    from numba.core import types

    scalars = {"float": types.float64, "int": types.int64, "bool": types.boolean,
               "float4": types.UniTuple(types.float64, 4)}
    if code in scalars:
        return scalars[code]
    dtype = {"f": types.float64, "i": types.int64, "b": types.boolean}[code[0]]
    return types.Array(dtype, int(code[1:]), "C")


def build(output_dir: Path, file_name: str = "") -> Path:
    """Compile the exports into ``output_dir`` (as ``file_name`` when given)."""
    os.environ["VNPY_ROTATION_NO_AOT"] = "1"  # compile from the Python source, never from a previous build
    from importlib import import_module

    from vnpy_rotation import compiled

    compiled.load_numba()  # every jit function below is a numba dispatcher from the start
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*'pycc' module")  # numba.pycc's (pending) deprecation notice
        from numba.pycc import CC

    cc = CC("_compiled", source_module=__name__)
    cc.output_dir = str(output_dir)
    if file_name:
        cc.output_file = file_name
    cc.verbose = False
    # The install builds for the machine it runs on, as numba's JIT would (the same instructions, the same
    # bits: numba allows no reassociation or fused multiply-add without fastmath); numba.pycc's default is a
    # generic x86-64 that ran the ETF kernel about 5 % slower (docs/speed/command.md). An image or wheel built
    # for other machines sets VNPY_ROTATION_AOT_CPU=generic (or an LLVM CPU name).
    cc.target_cpu = os.environ.get(CPU_ENV, "host")
    for module_name in MODULES:
        import_module(module_name)
    for name, (module_name, codes) in compiled.EXPORTED.items():
        dispatcher = getattr(sys.modules[module_name], name)
        args = tuple(_numba_type(code) for code in codes)
        dispatcher.compile(args)  # numba infers the return type
        cc.export(name, dispatcher.overloads[args].signature)(dispatcher.py_func)
    files = {str(Path(m.__file__).resolve().relative_to(compiled.PACKAGE))
             for n, m in sys.modules.items() if n.startswith("vnpy_rotation.") and getattr(m, "__file__", None)}
    if not files <= set(compiled.STAMPED):
        raise RuntimeError(f"add {sorted(files - set(compiled.STAMPED))} to vnpy_rotation.compiled.STAMPED")
    stamp = compiled.source_stamp()

    def stamp_function() -> int:
        return stamp

    cc.export("stamp", "int64()")(stamp_function)
    cc.compile()
    return output_dir


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    print(build(target))
