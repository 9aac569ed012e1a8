"""``kmq serve``: a local web page to compress, compare and download.

An edge of the package, like the CLI: it imports the core, never the
reverse. Needs the ``web`` extra (Starlette, uvicorn, python-multipart);
the page itself (static/) is plain HTML, CSS and JavaScript shipped here,
with no build step and nothing fetched from elsewhere.
"""
