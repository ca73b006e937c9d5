"""Errors and their pages: the Failure, its frames and hint, the 503 page, request-time error pages."""
