"""Training and packaging of versioned scikit-learn model artifacts."""
