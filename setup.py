"""What pyproject.toml cannot say: install ``scaling_jax_lm_eval.pth`` beside the package.

lm-eval releases up to 0.4.13 and 0.5.0.dev1 read no entry points for models, so the file's one line
installs ``scaling_jax/eval/lm_eval_hook.py``'s import finder at interpreter start and
``lm_eval --model scaling_jax`` finds our model (newer releases read the ``lm_eval.models`` entry
point in pyproject.toml). Wheels get the file from ``build_py``, editable installs from
``editable_wheel``.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "scaling_jax_lm_eval.pth"
LINE = "import scaling_jax.eval.lm_eval_hook as h; h.install()\n"


class BuildPy(build_py):
    def run(self):
        super().run()
        with open(os.path.join(self.build_lib, PTH), "w") as f:
            f.write(LINE)


class EditableWheel(editable_wheel):
    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
        out = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        with open(os.path.join(unpacked_wheel, PTH), "w") as f:
            f.write(LINE)
        return out


setup(cmdclass={"build_py": BuildPy, "editable_wheel": EditableWheel})
