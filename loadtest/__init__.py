"""Load checks (Locust SLO gate) and the side-by-side serving benchmark."""
