"""The HTTP API's blueprints; `app.create_app` puts them together."""
