"""`python -m fastrnn ...` is the `fastrnn` command."""

import sys

from fastrnn.cli import main

sys.exit(main())
