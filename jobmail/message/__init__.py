"""The message: composing it from a template (Jinja2), and the guide's checks."""

# The reasons the shipped templates can give, one neutral sentence each (templates/*.txt.j2). Here, where
# importing costs nothing: the parser of `send` and `lint` lists them, and a send starts connecting only
# once its arguments are parsed (#19), so they must not load the message model (dataclasses: ~9 ms).
REASON_CHOICES = ("another-offer", "personal", "role-fit", "career-change")
