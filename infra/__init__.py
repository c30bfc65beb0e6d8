"""Pulumi program of modelship: `pulumi up` deploys it, `python -m infra.render` renders it under mocks."""
