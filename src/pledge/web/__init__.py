"""HTTP edge: the FastAPI application, its dependencies, problem+json errors and page plumbing."""
