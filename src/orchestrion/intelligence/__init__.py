"""Prediction, selection and learning. For now: a historical prior."""
