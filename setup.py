"""Build hook: compile the backtest's numba loops ahead of time (vnpy_rotation/aot_build.py) at install.

Everything else is declared in setup.cfg. Without the extension (a failed or skipped build: no C compiler,
a numba without ``numba.pycc``, or sources edited since) the same functions run through numba's just-in-time
compiler: slower to start, same results. A failed build never fails the install.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class AheadOfTime(build_ext):
    """Builds ``vnpy_rotation._compiled`` with numba.pycc instead of a C compiler run on sources."""

    def build_extensions(self) -> None:
        # An extension that could not be built is dropped from the command's list, so that nothing asks for its
        # file afterwards (an editable install copies every listed extension into the source tree).
        self.extensions = [ext for ext in self.extensions if self._built(ext)]

    def _built(self, ext: Extension) -> bool:
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # this source tree's package
        try:
            from vnpy_rotation.aot_build import build

            build(target.parent, target.name)
            return True
        except Exception as exc:  # noqa: BLE001 -- an install must not fail for want of the faster start
            print(f"warning: vnpy_rotation._compiled not built ({exc}); numba compiles at first use", file=sys.stderr)
            return False
        finally:
            sys.path.pop(0)


setup(ext_modules=[Extension("vnpy_rotation._compiled", sources=[])], cmdclass={"build_ext": AheadOfTime})
