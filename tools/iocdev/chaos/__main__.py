"""``python -m iocdev.chaos`` (see :mod:`iocdev.chaos.run`)."""

import sys

from iocdev.chaos.run import main

sys.exit(main())
