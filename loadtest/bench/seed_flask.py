"""Seed-style baseline (seed 001/002 tutorial): Flask under gunicorn with 2 sync workers, a new
Postgres connection opened for every request to insert the prediction.

Kept faithful on purpose, including its anti-patterns (connection per request, swallowed write errors);
the harness counts the rows afterwards so a swallowed failure shows. psycopg 3 stands in for psycopg2:
both open the connection through libpq, and the per-request cost is Postgres forking a backend.

    gunicorn --bind 127.0.0.1:PORT --workers 2 loadtest.bench.seed_flask:app
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import psycopg
from flask import Flask, jsonify, request

from loadtest.bench.baseline_model import load_artifact

app = Flask(__name__)
model, _manifest = load_artifact()
log = logging.getLogger(__name__)


@app.route("/health", methods=["GET"])
def health_check() -> Any:
    return jsonify({"status": "healthy", "model_loaded": True})


@app.route("/predict", methods=["POST"])
def predict_price() -> Any:
    try:
        data = request.get_json()
        for field in ("size", "bedrooms", "age"):
            if field not in data:
                return jsonify({"error": f"Missing field: {field}"}), 400
        features = np.array([[data["size"], data["bedrooms"], data["age"]]])
        prediction = max(float(model.predict(features)[0]), 0.0)
        store_prediction(data, prediction)
        return jsonify({"prediction": round(prediction, 2), "input": data})
    except Exception as exc:  # the seed's behaviour, reproduced
        return jsonify({"error": str(exc)}), 500


def store_prediction(data: dict[str, Any], prediction: float) -> None:
    try:
        conn = psycopg.connect(os.environ["DATABASE_URL"])
        cursor = conn.cursor()
        cursor.execute(
            "INSERT INTO bench_seed_predictions (size, bedrooms, age, predicted_price) VALUES (%s, %s, %s, %s)",
            (data["size"], data["bedrooms"], data["age"], prediction),
        )
        conn.commit()
        cursor.close()
        conn.close()
    except Exception as exc:  # swallowed, as in the seed: the harness's row count exposes it
        log.warning("Error storing prediction: %s", exc)
