"""``python -m mjreinforce`` is the ``mjreinforce`` command."""

import sys

from mjreinforce.cli import main

sys.exit(main())
