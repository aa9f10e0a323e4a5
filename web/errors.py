"""Error answers: an HTML page in the site's design for browsers, plain text or JSON for scripts.

Scripts (cron's /start, the API, monitoring) read the body of an error, so they keep a short text
(or JSON under /api/); a browser asking for HTML gets error.html. A 500 never shows the exception:
it is in the log, and the page says only that something failed.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException, InternalServerError

# Paths scripts call: they get text or JSON whatever they accept.
_SCRIPT_PATHS = ("/api/", "/start", "/metrics", "/healthz")

TITLES = {403: "Forbidden", 404: "Not found", 500: "Something went wrong"}
_DEFAULT = {
    403: "You may not open this page.",
    404: "There is no page at this address.",
    500: "The server could not answer this request. The error is in the service's log.",
}
# Drawn without templates: what a browser sees when even the error page cannot be made.
_BARE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · rrdalarm</title>"
         "<link rel=\"stylesheet\" href=\"/static/rrdalarm.css\"></head><body><main><h1>{code} {title}</h1>"
         "<p>{message}</p></main></body></html>")


def wants_html() -> bool:
    """A browser's page request: not a script path, and HTML preferred over JSON and text."""
    if request.path.startswith(_SCRIPT_PATHS):
        return False
    accept = request.accept_mimetypes
    # Named, not matched by */*: curl and most libraries send */* and want the text.
    named = any(value == "text/html" and quality > 0 for value, quality in accept)
    return named and accept.best_match(["text/html", "application/json", "text/plain"]) == "text/html"


def _plain(code: int, message: str) -> Response:
    if request.path.startswith("/api/"):
        response = jsonify({"error": message})
        response.status_code = code
        return response
    return Response(message + "\n", code, {"Content-Type": "text/plain; charset=utf-8"})


def _page(code: int, message: str) -> Response:
    title = TITLES.get(code, "Error")
    try:
        body = render_template("error.html", code=code, title=title, message=message)
    except Exception:  # the page needs the store (who is logged in): when that fails, a bare page
        current_app.logger.exception("the error page could not be rendered")
        from markupsafe import escape

        body = _BARE.format(code=code, title=title, message=escape(message))
    return Response(body, code, {"Content-Type": "text/html; charset=utf-8"})


def error_response(code: int, message: str | None = None) -> Response:
    """The answer for an error `code`: `message` (or a generic one) as a page, JSON or text."""
    text = message or _DEFAULT.get(code, TITLES.get(code, "Error"))
    return _page(code, text) if wants_html() else _plain(code, text)


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    # werkzeug's own descriptions are long and generic; ours are shorter. A view's abort(…, text) keeps its text.
    custom = exc.description if exc.description != type(exc).description else None
    return error_response(code, custom)


def _server_error(exc: InternalServerError) -> Response:
    # Only the generic text: the original exception (exc.original_exception) may name files or secrets.
    return error_response(500)


def favicon() -> Response:
    return send_from_directory(current_app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml",
                               max_age=86400)


def init_errors(app: Flask) -> None:
    app.register_error_handler(403, _http_error)
    app.register_error_handler(404, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
