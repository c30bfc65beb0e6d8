"""`python -m pipelines STAGE ...`: see pipelines.cli."""

import sys

from pipelines.cli import main

sys.exit(main())
