"""Run inside KServe's own venv (loadtest.bench.peers): call modelship's v2 routes with kserve.InferenceRESTClient.

Reads {"url", "model", "rows", "headers"} as JSON on stdin; prints what the client got back as JSON.
The request is built with KServe's own InferRequest / InferInput (binary tensor data, as its default).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(request: dict[str, Any]) -> dict[str, Any]:
    url, model, headers = request["url"], request["model"], request["headers"]
    rows = np.asarray(request["rows"], dtype=np.float64)
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    try:
        tensor = InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows)
        infer = InferRequest(model, [tensor], request_id="kserve-client")
        response = await client.infer(url, infer, model_name=model, headers=dict(headers))
        return {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, model),
            "id": response.id,
            "outputs": {o.name: o.as_numpy().tolist() for o in response.outputs},
        }
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
