"""The message: composing it from a template (Jinja2), and the guide's checks."""
