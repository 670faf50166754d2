"""Make a cached environment's packages importable from the current (tox) environment.

Writes ``_polyformers_frameworks.pth`` into this interpreter's site-packages, naming the shared
site-packages directory given as the only argument. Packages installed in the current
environment still come first on sys.path.
"""

import os
import sys
import sysconfig

if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
    sys.exit(f"usage: link_site.py SITE_PACKAGES_DIR (got {sys.argv[1:]}); run tests through scripts/test-all.sh")
purelib = sysconfig.get_paths()["purelib"]
with open(os.path.join(purelib, "_polyformers_frameworks.pth"), "w") as f:
    f.write(sys.argv[1] + "\n")
