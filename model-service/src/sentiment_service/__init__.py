"""Sentiment-analysis model service: FastAPI app, compiled model, metrics and drift monitoring."""
