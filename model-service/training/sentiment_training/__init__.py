"""Offline training: fit the scikit-learn pipeline and compile it for the service."""
