"""`python -m archspec` runs the command line."""

import sys

from archspec.cli import main

sys.exit(main())
