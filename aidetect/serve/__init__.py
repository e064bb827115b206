"""The HTTP API: `python -m aidetect.serve` (or `aidetect-serve`), a FastAPI app run by uvicorn.

A front end like classify.py and the web page: settings.py (its options), uploads.py (multipart
read into memory under limits), batching.py (concurrent requests into one model call), metrics.py
(Prometheus) and app.py (the routes). Nothing else in the package imports it.
"""
