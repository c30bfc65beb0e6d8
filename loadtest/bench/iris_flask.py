"""Seed 003's iris app: Flask, `model.predict([input])`, the class index back. Served like seed 001,
with gunicorn and 2 sync workers (one per core), since the seed's `app.run(debug=True)` is not a server.

    gunicorn --bind 127.0.0.1:PORT --workers 2 loadtest.bench.iris_flask:app
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from loadtest.bench.baseline_model import load_artifact

model, _manifest = load_artifact()
app = Flask(__name__)


@app.route("/health", methods=["GET"])
def health() -> Any:
    return jsonify({"status": "ok"})  # not in the seed; the harness needs a readiness probe


@app.route("/predict", methods=["POST"])
def predict() -> Any:
    data = request.get_json()
    input_data = data["input"]
    prediction = model.predict([input_data])
    return jsonify({"prediction": int(prediction[0])})
