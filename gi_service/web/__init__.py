"""Server-rendered pages for people (templates/ and static/)."""
from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
