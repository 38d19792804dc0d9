"""Input helpers shared by the API: phone numbers, contact files, message templates."""
