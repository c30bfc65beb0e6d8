"""Where a request comes from: the `X-Modelship-Source` header's contract, import-light for every sender.

A request without the header is `live`: a user's. Synthetic traffic names itself, so the drift, quality
and canary analyses of the prediction log read users' requests only unless asked otherwise.
"""

from __future__ import annotations

import re

SOURCE_HEADER = "X-Modelship-Source"
LIVE = "live"
SMOKE, LOADCHECK, BENCH, SHADOW = "smoke", "loadcheck", "bench", "shadow"  # what modelship's own senders send
SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
