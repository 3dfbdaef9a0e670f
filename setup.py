"""Which packages setuptools installs; everything else is declared in pyproject.toml.

The packages are found, not listed: every folder under addons/mockbox/ (data folders such as
schema/ and editor/static/ too, so setuptools neither warns nor leaves them out), plus config/
installed as mockbox.defaults. pyproject.toml alone can find packages or name them, not both.
"""

from setuptools import find_namespace_packages, setup

packages = find_namespace_packages("addons", include=["mockbox", "mockbox.*"])
setup(packages=[*packages, "mockbox.defaults"])
