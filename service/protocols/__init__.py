"""The wire protocols the core answers: /predict, KServe v1 and Open Inference Protocol v2.

Each one only translates: its body into the core's `Instances`, and the core's `Result` or error
into its own answer. `FAST_ROUTES` lists the POST routes the pure-ASGI fast path serves, with the
FastAPI route template that documents each one (its declared scopes are enforced alike).
"""

from __future__ import annotations

from service.protocols.kserve_v1 import V1, V1_PREDICT
from service.protocols.predict import PREDICT, PREDICT_PATH
from service.protocols.v2 import V2, V2_INFER, V2_INFER_VERSION

__all__ = ["PREDICT", "PREDICT_PATH", "V1", "V1_PREDICT", "V2", "V2_INFER", "V2_INFER_VERSION"]
