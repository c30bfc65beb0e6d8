"""KServe's ModelServer with a small `kserve.Model` serving our `model.joblib`: the peer of `make bench PEERS=kserve`.

Runs in KServe's own venv (loadtest/bench/peers.py), so it imports nothing of modelship. The model follows
KServe's sklearnserver (kserve/kserve, python/sklearnserver/sklearnserver/model.py): `load()` reads
the one joblib file with joblib and sets `ready`; `predict()` takes the v2 request's first input with
`get_predict_input` and answers `get_predict_response` of `predict` (or `predict_proba` when
PREDICT_PROBA=true). Usage: python kserve_peer.py --model_dir DIR --model_name NAME --http_port N --workers W
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import joblib
from kserve import Model, ModelServer
from kserve.model_server import parser as kserve_parser
from kserve.utils.utils import get_predict_input, get_predict_response


class SklearnPeer(Model):  # type: ignore[misc]
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.ready = False
        self._model: Any = None

    def load(self) -> bool:
        self._model = joblib.load(self.model_dir / "model.joblib")
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        instances = get_predict_input(payload)
        proba = os.environ.get("PREDICT_PROBA", "false").lower() == "true" and hasattr(self._model, "predict_proba")
        result = self._model.predict_proba(instances) if proba else self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve_parser], conflict_handler="resolve")
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--model_name", required=True)
    args, _ = parser.parse_known_args()
    model = SklearnPeer(args.model_name, args.model_dir)
    model.load()
    ModelServer(http_port=args.http_port, workers=args.workers, enable_grpc=False).start([model])
