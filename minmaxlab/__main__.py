"""``python -m minmaxlab``: the ``minmaxlab`` command."""

import sys

from minmaxlab.cli import main

sys.exit(main())
